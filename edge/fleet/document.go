package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/edgegw/gateway/edge/config"
	"github.com/edgegw/gateway/units"
)

// LocalOnly are the top-level sections of the config that a pushed document
// cannot change. A document may leave them out (the gateway merges in its
// own) or repeat them with the gateway's own values; any other value is
// refused (ReasonLocalOnly). They are local-only because changing them could
// lock the gateway out or would not take effect without a restart:
//
//   - gateway: its ID (the identity of its events and of its config key),
//     its groups (which bundles it takes) and its trusted-keys file;
//   - buffer: the store's path and its options, set when the store opens;
//   - fleet: the probation window and the control topics;
//   - http: the local status/health address, opened once at start;
//   - log: set once at start.
//
// A pushed document is thus the streams, sources, broker and uplink
// sections: everything a pipeline swap rebuilds.
var LocalOnly = []string{"gateway", "buffer", "fleet", "http", "log"}

// Merge builds the config a gateway runs from a pushed document: the
// document's own sections over the defaults, and the local-only sections
// taken from local. Errors are *RejectError: ReasonLocalOnly when the
// document sets a local-only setting to a value other than local's,
// ReasonInvalid when the result does not parse or validate.
//
// Placeholders in the document's values (${local:NAME}, ${gateway.id}) are
// filled in from local first (config.Substitute); one that local does not
// define is ReasonInvalid.
func Merge(local *config.Config, doc []byte) (*config.Config, error) {
	doc, err := config.Substitute(doc, config.LocalLookup(local))
	if err != nil {
		return nil, reject(ReasonInvalid, "%s", oneLine(err.Error()))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, reject(ReasonInvalid, "%s", oneLine(err.Error()))
	}
	if diffs := localOnlyDiffs(local, &root); len(diffs) > 0 {
		return nil, reject(ReasonLocalOnly, "the document sets %s to other values than this gateway's; leave local-only settings (%s) out",
			strings.Join(diffs, ", "), strings.Join(LocalOnly, ", "))
	}
	cfg, err := config.ParseWith(doc, func(c *config.Config) { presetLocal(c, local) })
	if err != nil {
		return nil, reject(ReasonInvalid, "%s", oneLine(err.Error()))
	}
	return cfg, nil
}

func presetLocal(c, local *config.Config) {
	c.Gateway = local.Gateway
	c.Gateway.Groups = append([]string(nil), local.Gateway.Groups...)
	c.Buffer, c.Fleet, c.HTTP, c.Log = local.Buffer, local.Fleet, local.HTTP, local.Log
	// A rule table's relative CSV path is read from the local config
	// file's directory: the document has none of its own.
	c.Dir = local.Dir
}

// CheckDocument validates a document as a gateway would, with placeholders
// for the local-only settings it leaves out. It returns the local-only
// settings the document does set: a gateway accepts the bundle only if they
// equal its own. Placeholders (${local:NAME}, ${gateway.id}) are filled in
// with stand-ins, and what the checks find on their lines is left to each
// gateway: CheckDocumentFor checks them for one gateway.
func CheckDocument(doc []byte) (localOnly []string, err error) { return CheckDocumentFor(doc, nil) }

// CheckDocumentFor is CheckDocument as the gateway whose local config file
// is local checks the document (Merge): every placeholder must be defined
// by it, and local-only settings the document sets must equal its own. A
// nil local is CheckDocument.
func CheckDocumentFor(doc []byte, local *config.Config) (localOnly []string, err error) {
	if len(doc) > config.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", config.ErrTooLarge, len(doc), config.MaxSize)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	if local != nil {
		if _, err := config.Substitute(doc, config.LocalLookup(local)); err != nil {
			return nil, err // each placeholder on a line of its own
		}
		if _, err := Merge(local, doc); err != nil {
			var re *RejectError
			if errors.As(err, &re) {
				return nil, errors.New(re.Detail)
			}
			return nil, err
		}
	} else if err := checkWithStandIns(doc); err != nil {
		return nil, err
	}
	m := mapping(&root)
	for i := 0; m != nil && i+1 < len(m.Content); i += 2 {
		sec := m.Content[i].Value
		if !isLocalOnly(sec) {
			continue
		}
		if v := m.Content[i+1]; v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				localOnly = append(localOnly, sec+"."+v.Content[j].Value)
			}
		} else if v.Tag != "!!null" {
			localOnly = append(localOnly, sec)
		}
	}
	return localOnly, nil
}

// checkWithStandIns parses doc with every placeholder filled in by a
// stand-in and the local-only settings preset, reporting what it finds on
// lines without placeholders.
func checkWithStandIns(doc []byte) error {
	filled, err := config.Substitute(doc, func(name string) (string, bool) {
		if name == "gateway.id" {
			return "placeholder-gateway", true
		}
		return "placeholder", true
	})
	if err != nil {
		return err
	}
	_, err = config.ParseWith(filled, func(c *config.Config) {
		c.Gateway.ID = "placeholder-gateway"
		c.Buffer.Path = "placeholder-buffer.db"
	})
	var es units.Errors
	if err == nil || !errors.As(err, &es) || !config.HasPlaceholders(doc) {
		return err
	}
	lines := config.PlaceholderLines(doc)
	var keep units.Errors
	for _, e := range es {
		if !lines[e.Line] {
			keep = append(keep, e)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return keep
}

func isLocalOnly(section string) bool {
	for _, s := range LocalOnly {
		if s == section {
			return true
		}
	}
	return false
}

func mapping(root *yaml.Node) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// localOnlyDiffs names every local-only setting the document sets to a value
// other than local's ("gateway.id"). Settings it cannot decode are left to
// the full parse to report.
func localOnlyDiffs(local *config.Config, root *yaml.Node) []string {
	m := mapping(root)
	if m == nil {
		return nil
	}
	var diffs []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		sec, v := m.Content[i].Value, m.Content[i+1]
		var same func(n *yaml.Node) bool
		switch sec {
		case "gateway":
			same = func(n *yaml.Node) bool { return sameSection(local.Gateway, n) }
		case "buffer":
			same = func(n *yaml.Node) bool { return sameSection(local.Buffer, n) }
		case "fleet":
			same = func(n *yaml.Node) bool { return sameSection(local.Fleet, n) }
		case "http":
			same = func(n *yaml.Node) bool { return sameSection(local.HTTP, n) }
		case "log":
			same = func(n *yaml.Node) bool { return sameSection(local.Log, n) }
		default:
			continue
		}
		if v.Kind != yaml.MappingNode {
			if v.Tag != "!!null" {
				diffs = append(diffs, sec) // a scalar or list where a section belongs
			}
			continue
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			one := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: v.Content[j : j+2]}
			if !same(one) {
				diffs = append(diffs, sec+"."+v.Content[j].Value)
			}
		}
	}
	return diffs
}

// sameSection reports whether decoding n over a copy of mine leaves it
// unchanged. Both are compared as re-encoded YAML, so equal settings compare
// equal whatever their spelling ("60s" and "1m", "1MiB" and 1048576, an
// empty list and a missing one).
func sameSection[T any](mine T, n *yaml.Node) bool {
	before, err := yaml.Marshal(mine)
	if err != nil {
		return false
	}
	var cp T
	if err := yaml.Unmarshal(before, &cp); err != nil {
		return false
	}
	if err := n.Decode(&cp); err != nil {
		return false
	}
	after, err := yaml.Marshal(cp)
	return err == nil && bytes.Equal(before, after)
}
