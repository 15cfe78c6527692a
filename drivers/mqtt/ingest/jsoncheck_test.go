package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	many := func(n int, extra string) string { // an object of n keys, then extra
		var b strings.Builder
		b.WriteString(`{`)
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + `}`)
		return b.String()
	}
	// dupAt is the reason for the last key k of in.
	dupAt := func(in, k string) string {
		return fmt.Sprintf("duplicate key %q at byte %d", k, strings.LastIndex(in, `"`+k+`"`))
	}
	m15, m16, m17, m40 := many(15, `"k0":0`), many(16, `"k0":0`), many(17, `"k16":0`), many(40, `"k7":0`)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain", `{"barcode":"JD014600006512345678","symbology":"code128","ts":1733320000123}`, ""},
		{"surrogate pair", `{"barcode":"\ud83d\ude00"}`, ""},
		{"surrogate pair upper case", `{"barcode":"x\uD83D\uDE00y"}`, ""},
		{"utf-8 text", `{"barcode":"café ☕ 😀"}`, ""},
		{"escaped backslash before u", `{"barcode":"\\ud800"}`, ""},
		{"same key in sibling objects", `{"a":{"x":1},"b":{"x":2},"c":[{"x":1},{"x":2}]}`, ""},
		{"same key at two depths", `{"x":{"x":{"x":1}}}`, ""},
		{"key equal to a value", `{"a":"b","b":"a"}`, ""},
		{"keys differing by escape", `{"a\n":1,"a\\n":2,"a/":3,"a\/b":4}`, ""},
		{"many keys", many(40, `"k40":40`), ""},
		{"many keys, nested", many(20, `"o":`+many(20, `"k40":40`)), ""},
		{"whitespace around", " \t\n{ \"a\" : 1 , \"b\" : [ ] }\r\n", ""},
		{"not an object", `"\ud83d\ude00"`, ""},

		{"invalid utf-8", "{\"barcode\":\"a\xffb\"}", "invalid UTF-8 in string at byte 13"},
		{"truncated rune", "{\"barcode\":\"caf\xc3\"}", "invalid UTF-8 in string at byte 15"},
		{"encoded surrogate", "{\"barcode\":\"\xed\xa0\x80\"}", "invalid UTF-8 in string at byte 12"},
		{"overlong", "{\"barcode\":\"\xc0\xaf\"}", "invalid UTF-8 in string at byte 12"},
		{"invalid utf-8 in a key", "{\"bar\x80code\":1}", "invalid UTF-8 in string at byte 5"},
		{"invalid utf-8 in an array", "{\"a\":[\"ok\",\"\xfe\"]}", "invalid UTF-8 in string at byte 12"},
		{"lone high surrogate", `{"barcode":"\ud800"}`, `lone surrogate \ud800 at byte 12`},
		{"lone low surrogate", `{"barcode":"x\uDC00"}`, `lone surrogate \udc00 at byte 13`},
		{"high then high", `{"barcode":"\ud83d\ud83d\ude00"}`, `lone surrogate \ud83d at byte 12`},
		{"high then not an escape", `{"barcode":"\ud83dx\ude00"}`, `lone surrogate \ud83d at byte 12`},
		{"high then other escape", `{"barcode":"\ud83d\n"}`, `lone surrogate \ud83d at byte 12`},
		{"high at the end", `{"barcode":"ab\udbff"}`, `lone surrogate \udbff at byte 14`},
		{"pair then low", `{"barcode":"\ud83d\ude00\ude00"}`, `lone surrogate \ude00 at byte 24`},
		{"lone surrogate in a key", `{"\udfff":1}`, `lone surrogate \udfff at byte 2`},
		{"duplicate key", `{"barcode":"x","barcode":"y"}`, `duplicate key "barcode" at byte 15`},
		{"duplicate key, other value types", `{"a":{"b":1},"c":2,"a":[3]}`, `duplicate key "a" at byte 19`},
		{"nested duplicate", `{"meta":{"ts":1,"fw":"1","ts":2}}`, `duplicate key "ts" at byte 25`},
		{"duplicate in an array of objects", `{"l":[{"x":1},{"x":1,"x":2}]}`, `duplicate key "x" at byte 21`},
		{"duplicate after a closed object", `{"a":{"b":1,"c":2},"a":3}`, `duplicate key "a" at byte 19`},
		{"duplicate by escape", `{"a":1,"\u0061":2}`, `duplicate key "a" at byte 7`},
		{"duplicate by escaped slash", `{"a/b":1,"a\/b":2}`, `duplicate key "a/b" at byte 9`},
		{"duplicate by surrogate pair", `{"😀":1,"\ud83d\ude00":2}`, `duplicate key "😀" at byte 10`},
		{"duplicate empty key", `{"":1,"":2}`, `duplicate key "" at byte 6`},
		{"duplicate as key 16", m15, dupAt(m15, "k0")},
		{"duplicate as key 17", m16, dupAt(m16, "k0")},
		{"duplicate as key 18", m17, dupAt(m17, "k16")},
		{"duplicate in a large object", m40, `duplicate key "k7" at byte 341`},
		{"duplicate in a large nested object", many(20, `"o":`+m40), dupAt(many(20, `"o":`+m40), "k7")},
		{"first problem wins", "{\"a\":1,\"a\":\"\xff\"}", `duplicate key "a" at byte 7`},
		{"long key clipped", `{"` + strings.Repeat("k", 70) + `":1,"` + strings.Repeat("k", 70) + `":2}`,
			`duplicate key "` + strings.Repeat("k", 64) + `…" at byte 76`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !json.Valid([]byte(tc.in)) {
				t.Fatalf("test input is not JSON: %s", tc.in)
			}
			if got := checkJSON([]byte(tc.in)); got != tc.want {
				t.Errorf("checkJSON(%s)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestUnescapeJSON(t *testing.T) {
	for in, want := range map[string]string{
		``:                       ``,
		`abc`:                    `abc`,
		`\"\\\/\b\f\n\r\t`:       "\"\\/\b\f\n\r\t",
		`\u0061\u00e9\u263A`:     "aé☺",
		`x\ud83d\ude00y`:         "x😀y",
		`\u0000`:                 "\x00",
		`caf\u00e9 \\u0041`:      `café \u0041`,
		`\uDBFF\uDFFF`:           "\U0010FFFF",
		"\u00e9 raw and \\u00e9": "é raw and é",
	} {
		if got := string(unescapeJSON([]byte(in))); got != want {
			t.Errorf("unescapeJSON(%s) = %q, want %q", in, got, want)
		}
		// encoding/json agrees.
		var s string
		if err := json.Unmarshal([]byte(`"`+in+`"`), &s); err != nil || s != want {
			t.Errorf("json.Unmarshal(%s) = %q, %v", in, s, err)
		}
	}
}

func TestCheckJSONAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if bad := checkJSON(benchScan); bad != "" {
			t.Fatal(bad)
		}
	})
	if n != 0 {
		t.Errorf("checkJSON of a typical payload: %v allocations, want 0", n)
	}
}

// FuzzCheckJSON holds checkJSON against encoding/json on what it accepts:
// no panic on any input; when checkJSON finds nothing, encoding/json
// altered nothing (no U+FFFD the input did not spell, no key seen twice in
// an object); when it finds something, it is there.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{"barcode":"JD014600006512345678","symbology":"code128","ts":1733320000123}`,
		`{"a":1,"\u0061":2}`, `{"a":{"b":1,"b":2}}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud800"}`,
		`{"a":"\udc00\ud800"}`, "{\"a\":\"\xff\"}", `[{"a":1},{"a":1}]`, `{"\ufffd":"\uFFFD"}`,
		`{"a\/":1,"a/":2}`, `{"":0,"":0}`, `"\\ud800"`, `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"ka":0,"kb":1,"kc":2,"kd":3,"ke":4,"kf":5,"kg":6,"k0":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		bad := checkJSON(data) // never panics, JSON or not
		if !json.Valid(data) {
			return
		}
		dup, hasDup, replaced := walkJSON(data)
		spelled := bytes.Contains(data, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
		switch {
		case bad == "":
			if !utf8.Valid(data) {
				t.Fatalf("accepted invalid UTF-8: %q", data)
			}
			if hasDup {
				t.Fatalf("missed duplicate key %q in %s", dup, data)
			}
			if replaced && !spelled {
				t.Fatalf("missed a string that decodes with U+FFFD: %s", data)
			}
		case strings.HasPrefix(bad, "duplicate key "):
			if !hasDup {
				t.Fatalf("%s, but encoding/json sees none in %s", bad, data)
			}
		case strings.HasPrefix(bad, "invalid UTF-8 "):
			if utf8.Valid(data) {
				t.Fatalf("%s, but %q is UTF-8", bad, data)
			}
		case strings.HasPrefix(bad, "lone surrogate "):
			if !replaced {
				t.Fatalf("%s, but encoding/json replaced nothing in %s", bad, data)
			}
		default:
			t.Fatalf("unexpected %q for %s", bad, data)
		}
	})
}

// walkJSON walks data, valid JSON, with encoding/json's tokens: it returns
// the first key that some object has twice, if any, and whether some
// string decoded with U+FFFD.
func walkJSON(data []byte) (dup string, hasDup, replaced bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return dup, hasDup, replaced
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.key
		if top != nil && top.object {
			top.key = !top.key
		}
		switch x := tok.(type) {
		case json.Delim:
			switch x {
			case '{', '[':
				stack = append(stack, &frame{object: x == '{', keys: map[string]bool{}, key: true})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
			}
		case string:
			if strings.ContainsRune(x, utf8.RuneError) {
				replaced = true
			}
			if isKey {
				if top.keys[x] && !hasDup {
					dup, hasDup = x, true
				}
				top.keys[x] = true
			}
		}
	}
}

func BenchmarkCheckJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchScan)))
	for b.Loop() {
		if bad := checkJSON(benchScan); bad != "" {
			b.Fatal(bad)
		}
	}
}
