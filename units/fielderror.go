package units

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FieldError is one invalid setting of a config: the one error contract of
// every config package (edge/config, the drivers, uplink, sink).
//
// A Validate method that sees only its own section sets Path relative to
// that section ("subscriptions[0].topic") and leaves Line 0; the loader of
// the file puts the section's path in front (Under) and finds the line
// (Locate), so that the gateway reports
// "sources[2].mqtt.subscriptions[0].topic" on the line that sets it.
type FieldError struct {
	// Path is the key path the way the YAML nests it: keys joined by ".",
	// sequence items as "[i]" ("users[2].publish[0]"). "" is the whole
	// document (a syntax error).
	Path string
	// Line is the 1-based line of the setting in its file; 0 when unknown
	// (the setting is absent, or the error has not been located yet).
	Line int
	// Msg says what is wrong, without the path or the line.
	Msg string
}

// Error is "line 12: streams[0].max_age: msg", leaving out what is unknown.
func (e *FieldError) Error() string {
	s := e.Msg
	if e.Path != "" {
		s = e.Path + ": " + s
	}
	if e.Line > 0 {
		s = fmt.Sprintf("line %d: %s", e.Line, s)
	}
	return s
}

// Errors is every problem found in a config. A Validate method returns nil
// or a non-empty Errors (see Err).
type Errors []*FieldError

// Add appends an error at path (without a line).
func (es *Errors) Add(path, format string, args ...any) {
	*es = append(*es, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Err returns es as an error, or nil when it is empty (a nil Errors in an
// error interface would not be nil).
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Error is one line per error.
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find each *FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// SortByLine sorts es into file order, errors without a line first, and
// keeps the order of errors on one line.
func (es Errors) SortByLine() {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
}

// Under returns the errors of a section's Validate as errors of the whole
// document: each path gets prefix in front ("sources[2].mqtt" +
// "subscriptions[0].topic"). An error that is not a FieldError (or a list
// of them) becomes one at prefix itself, its message whole. nil gives nil.
func Under(prefix string, err error) Errors {
	if err == nil {
		return nil
	}
	var out Errors
	var add func(err error)
	add = func(err error) {
		switch e := err.(type) {
		case Errors:
			for _, fe := range e {
				add(fe)
			}
			return
		case *FieldError:
			out = append(out, &FieldError{Path: JoinPath(prefix, e.Path), Line: e.Line, Msg: e.Msg})
			return
		case interface{ Unwrap() []error }: // errors.Join
			for _, x := range e.Unwrap() {
				add(x)
			}
			return
		}
		var fe *FieldError
		var es Errors
		switch {
		case errors.As(err, &es):
			add(es)
		case errors.As(err, &fe):
			add(fe)
		default:
			out = append(out, &FieldError{Path: prefix, Msg: err.Error()})
		}
	}
	add(err)
	return out
}

// JoinPath puts a section's path in front of a path within it:
// ("sources[2].mqtt", "qos") is "sources[2].mqtt.qos", ("users", "[1]") is
// "users[1]"; an empty side gives the other.
func JoinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case path[0] == '[':
		return prefix + path
	}
	return prefix + "." + path
}

// InFile returns es as the error of the file named file: its message has one
// line per error, each "FILE:LINE: PATH: MSG" (the form `gateway validate`
// prints), and errors.As still finds the Errors.
func (es Errors) InFile(file string) error { return &fileErrors{file: file, es: es} }

type fileErrors struct {
	file string
	es   Errors
}

func (f *fileErrors) Error() string {
	s := make([]string, len(f.es))
	for i, e := range f.es {
		loc := f.file
		if e.Line > 0 {
			loc = fmt.Sprintf("%s:%d", f.file, e.Line)
		}
		if e.Path != "" {
			loc += ": " + e.Path
		}
		s[i] = loc + ": " + e.Msg
	}
	return strings.Join(s, "\n")
}

func (f *fileErrors) Unwrap() error { return f.es }
