package sink

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// namespacePrefix is "persistent://<tenant>/<namespace>/".
func (p *PulsarConfig) namespacePrefix() string {
	return "persistent://" + p.Tenant + "/" + p.Namespace + "/"
}

// fullTopic turns a local topic name into a full one; full names pass.
func (p *PulsarConfig) fullTopic(name string) string {
	if strings.Contains(name, "://") {
		return name
	}
	return p.namespacePrefix() + name
}

// topicsPattern returns the TopicsPattern handed to the Pulsar client.
//
// pulsar-client-go lists the namespace's topics and keeps those whose full
// name the regular expression "<tenant>/<namespace>/<rest>" matches anywhere
// (unanchored); so <rest> is anchored at the end here. The default pattern
// "events-.*" would also match the default dead-letter topic "events-dlq",
// and RE2 has no negative look-ahead, so when the pattern is a literal prefix
// followed by ".*" the dead-letter name is cut out of it explicitly; any
// other pattern that matches the dead-letter topic is rejected.
func (p *PulsarConfig) topicsPattern() (string, error) {
	pat := p.Topics.Pattern
	if pat == "" {
		return "", fmt.Errorf("required when topics.names is empty")
	}
	if strings.Contains(pat, "/") {
		return "", fmt.Errorf("%q: a local topic name pattern cannot contain '/'", pat)
	}
	re, err := regexp.Compile(`^(?:` + pat + `)$`)
	if err != nil {
		return "", fmt.Errorf("%q: %v", pat, err)
	}
	rest := `(?:` + pat + `)$`
	prefix := p.namespacePrefix()
	if dlqLocal, same := strings.CutPrefix(p.DeadLetter(), prefix); same && re.MatchString(dlqLocal) {
		lit, ok := literalPrefixStar(pat)
		if !ok || !strings.HasPrefix(dlqLocal, lit) {
			return "", fmt.Errorf("%q also matches the dead-letter topic %q; narrow the pattern or move the dead-letter topic", pat, dlqLocal)
		}
		rest = regexp.QuoteMeta(lit) + notEqual(dlqLocal[len(lit):]) + `$`
	}
	return prefix + rest, nil
}

// literalPrefixStar reports whether pat is exactly a literal followed by
// ".*", and returns the literal.
func literalPrefixStar(pat string) (string, bool) {
	lit, ok := strings.CutSuffix(pat, ".*")
	if !ok {
		return "", false
	}
	re, err := syntax.Parse(lit, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	switch {
	case re.Op == syntax.OpEmptyMatch:
		return "", true
	case re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0:
		return string(re.Rune), true
	}
	return "", false
}

// notEqual returns an RE2 expression matching every string except s.
func notEqual(s string) string {
	rs := []rune(s)
	if len(rs) == 0 {
		return `(?:.+)`
	}
	alts := make([]string, 0, len(rs)+1)
	for i, r := range rs {
		// Equal to s up to i, then either the end or a different rune.
		alts = append(alts, regexp.QuoteMeta(string(rs[:i]))+`(?:[^`+quoteClass(r)+`].*)?`)
	}
	alts = append(alts, regexp.QuoteMeta(s)+`.+`)
	return `(?:` + strings.Join(alts, "|") + `)`
}

func quoteClass(r rune) string {
	if strings.ContainsRune(`\]^-[`, r) {
		return `\` + string(r)
	}
	return string(r)
}
