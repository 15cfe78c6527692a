package ingest

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// checkJSON finds what encoding/json would silently alter in data, a JSON
// text it has already accepted (one value, whitespace around it): a string
// with bytes that are not UTF-8 or with a \uXXXX surrogate escape that is
// not half of a pair (both become U+FFFD), and an object with the same key
// twice, at any depth, comparing keys as decoded ({"a":1,"\u0061":2} too;
// the last one would win). It returns "" when there is none, else what is
// wrong and its byte offset in data.
//
// One pass over the bytes; it allocates only for escaped keys and for
// objects of more than smallObject keys.
func checkJSON(data []byte) string {
	var (
		stackBuf [8]jsonFrame
		keysBuf  [16][]byte
		stack    = stackBuf[:0]
		keys     = keysBuf[:0] // the keys of the open objects, innermost last
		wantKey  bool          // the next string is an object key
	)
	for i := 0; i < len(data); {
		switch c := data[i]; c {
		case '"':
			end, esc, bad := scanJSONString(data, i)
			if bad != "" {
				return bad
			}
			if wantKey {
				wantKey = false
				k := data[i+1 : end]
				if esc {
					k = unescapeJSON(k)
				}
				top := &stack[len(stack)-1]
				if top.seen(keys[top.start:], k) {
					return fmt.Sprintf("duplicate key %s at byte %d", strconv.Quote(Clip(string(k))), i)
				}
				if top.set == nil {
					keys = append(keys, k)
				}
			}
			i = end + 1
		case '{', '[':
			stack = append(stack, jsonFrame{object: c == '{', start: len(keys)})
			wantKey = c == '{'
			i++
		case '}', ']':
			if len(stack) == 0 {
				return "" // not reached for a JSON text
			}
			keys = keys[:stack[len(stack)-1].start]
			stack = stack[:len(stack)-1]
			wantKey = false
			i++
		case ',':
			wantKey = len(stack) > 0 && stack[len(stack)-1].object
			i++
		default:
			i++
		}
	}
	return ""
}

// smallObject is how many keys an object has before checkJSON looks them
// up in a set rather than comparing each with each.
const smallObject = 16

// jsonFrame is an open object or array.
type jsonFrame struct {
	object bool
	start  int                 // index in keys of this object's first key
	set    map[string]struct{} // its keys, once it has more than smallObject
}

// seen tells whether k is among keys, the keys of this object so far.
// From smallObject keys on, it keeps them in a set, and k with them.
func (f *jsonFrame) seen(keys [][]byte, k []byte) bool {
	if f.set == nil && len(keys) < smallObject {
		for _, o := range keys {
			if bytes.Equal(o, k) {
				return true
			}
		}
		return false
	}
	if f.set == nil {
		f.set = make(map[string]struct{}, 2*len(keys))
		for _, o := range keys {
			f.set[string(o)] = struct{}{}
		}
	}
	if _, ok := f.set[string(k)]; ok {
		return true
	}
	f.set[string(k)] = struct{}{}
	return false
}

// scanJSONString scans the string that starts with the quote at data[i]. It
// returns the index of its closing quote, whether it has escapes, and what
// is wrong with it, if anything.
func scanJSONString(data []byte, i int) (end int, esc bool, bad string) {
	ascii := true
	j := i + 1
	for j < len(data) {
		c := data[j]
		switch {
		case c == '"':
			if !ascii {
				if n := invalidUTF8(data[i+1 : j]); n >= 0 {
					return j, esc, fmt.Sprintf("invalid UTF-8 in string at byte %d", i+1+n)
				}
			}
			return j, esc, ""
		case c == '\\':
			esc = true
			if j+1 >= len(data) {
				return len(data), esc, "" // not reached for a JSON text
			}
			if data[j+1] != 'u' {
				j += 2
				continue
			}
			r, ok := hex4(data, j+2)
			if !ok {
				return len(data), esc, "" // not reached for a JSON text
			}
			switch {
			case utf16.IsSurrogate(r) && r < 0xdc00: // high: a low one must follow
				if lo, ok := hex4(data, j+8); ok && data[j+6] == '\\' && data[j+7] == 'u' && lo >= 0xdc00 && lo <= 0xdfff {
					j += 12
					continue
				}
				return j, esc, fmt.Sprintf(`lone surrogate \u%04x at byte %d`, r, j)
			case utf16.IsSurrogate(r): // low without a high one before it
				return j, esc, fmt.Sprintf(`lone surrogate \u%04x at byte %d`, r, j)
			}
			j += 6
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			j++
		}
	}
	return len(data), esc, "" // not reached for a JSON text
}

// invalidUTF8 returns the offset of the first byte of b that is not part of
// a UTF-8 encoded rune, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for n := 0; n < len(b); {
		r, size := utf8.DecodeRune(b[n:])
		if r == utf8.RuneError && size == 1 {
			return n
		}
		n += size
	}
	return -1
}

// hex4 decodes the 4 hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescapeJSON decodes the escapes of s, the inside of a JSON string that
// scanJSONString has passed (so surrogate escapes come in pairs).
func unescapeJSON(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			out = append(out, c)
			i++
			continue
		}
		switch e := s[i+1]; e {
		case 'u':
			r, _ := hex4(s, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				lo, _ := hex4(s, i+2)
				r = utf16.DecodeRune(r, lo)
				i += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		default: // " \ /
			c = e
		}
		out = append(out, c)
		i += 2
	}
	return out
}
