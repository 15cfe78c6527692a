package units

import "regexp"

// NameRule says what a name in a config may be: a gateway's id and groups,
// a stream, a source, a gpio output, a fleet target. It is written after the
// quoted name in errors ("\"a b\": use 1-64 letters, ...").
const NameRule = "use 1-64 letters, digits, '.', '_' or '-'"

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether s follows NameRule (and starts with a letter or
// a digit). Names end up in Pulsar keys, metric labels and Cassandra
// partition keys, so every config package checks them with this one rule.
func ValidName(s string) bool { return nameRe.MatchString(s) }
