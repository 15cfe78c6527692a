package config

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edgegw/gateway/units"
)

// clipLen is the most bytes of a user value an error message repeats.
const clipLen = 64

// maxMsg bounds a whole error message, whatever it quotes.
const maxMsg = 1024

// maxErrors is the most field errors one units.Errors reports.
const maxErrors = 100

// clip shortens a user value to clipLen bytes (on a rune boundary) and
// says how long it was: "aaaa…(4194304 bytes)".
func clip(s string) string {
	return clipTo(s, clipLen)
}

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:cut(s, n)] + fmt.Sprintf("…(%d bytes)", len(s))
}

func cut(s string, n int) int {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// quote is %q of a user value, clipped: "aaaa"…(4194304 bytes).
func quote(s string) string {
	if len(s) <= clipLen {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:cut(s, clipLen)]) + fmt.Sprintf("…(%d bytes)", len(s))
}

// clipMsg bounds an error message that did not come from this package (a
// driver's, the uplink's, yaml's): every Go-quoted string in it longer
// than clipLen is clipped, and the whole message is cut at maxMsg. It
// runs in time linear in len(msg).
func clipMsg(msg string) string {
	if len(msg) <= clipLen {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		if msg[i] != '"' {
			j := strings.IndexByte(msg[i:], '"')
			if j < 0 {
				j = len(msg) - i
			}
			b.WriteString(msg[i : i+j])
			i += j
			continue
		}
		j := i + 1
		for j < len(msg) && msg[j] != '"' && msg[j] != '\n' {
			if msg[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(msg) || msg[j] != '"' { // not a quoted string
			j = min(j, len(msg))
			b.WriteString(msg[i:j])
			i = j
			continue
		}
		lit := msg[i : j+1]
		if len(lit) > clipLen+2 {
			if u, err := strconv.Unquote(lit); err == nil {
				lit = quote(u)
			} else {
				lit = clip(lit)
			}
		}
		b.WriteString(lit)
		i = j + 1
	}
	return clipTo(b.String(), maxMsg)
}

// fieldError is the one constructor of the field errors this package
// reports: it bounds the path and the message, so that no error repeats
// more than a clipped piece of any value from the document.
func fieldError(path string, line int, msg string) *units.FieldError {
	return &units.FieldError{Path: clipTo(path, 4*clipLen), Line: line, Msg: clipMsg(msg)}
}
