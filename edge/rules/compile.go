package rules

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/edgegw/gateway/event"
)

// The names a when expression sees, with their types: checked at compile
// time, so that a misspelt name ("atrs") refuses the config. At run time
// the env is a map (expr reads a map[string]any env without reflection),
// one per Set, refilled for each event (newEnv, fillEnv).
const (
	nameKind   = "kind"
	nameSource = "source"
	nameStream = "stream"
	nameTime   = "time"
	nameAttrs  = "attrs"
	nameTables = "tables"
)

// newEnv is an env with every name set to a value of its type.
func newEnv(tables map[string]map[string]any) map[string]any {
	if tables == nil {
		tables = map[string]map[string]any{}
	}
	return map[string]any{
		nameKind: "", nameSource: "", nameStream: "", nameTime: time.Time{},
		nameAttrs: map[string]any{}, nameTables: tables,
		fetchName: fetch,
	}
}

// fetchName is the function fetchPatch calls, in the env; not a name a
// rule writes by accident.
const fetchName = "__fetch"

var (
	attrsType  = reflect.TypeFor[map[string]any]()
	tablesType = reflect.TypeFor[map[string]map[string]any]()
)

// fetchPatch turns the lookups in attrs and in the tables (attrs.route,
// tables.routes[x]) into calls of fetch: expr looks a key up in a map by
// reflection, fetch with a type switch, called directly (its type is one
// the VM calls without reflection or an argument buffer). Same results:
// nil for an absent key.
type fetchPatch struct{}

func (fetchPatch) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional || m.Method {
		return
	}
	switch t := m.Node.Type(); {
	case t == attrsType, t == tablesType:
	case isFetch(m.Node): // tables.routes[x]: tables.routes was patched first
	default:
		return
	}
	ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fetchName}, Arguments: []ast.Node{m.Node, m.Property}})
}

func isFetch(n ast.Node) bool {
	c, ok := n.(*ast.CallNode)
	if !ok {
		return false
	}
	id, ok := c.Callee.(*ast.IdentifierNode)
	return ok && id.Value == fetchName
}

// fetch is m[key] for the maps fetchPatch patches; nil when the key is
// not text or absent.
func fetch(m, key any) any {
	k, ok := key.(string)
	if !ok {
		return nil
	}
	switch m := m.(type) {
	case map[string]any:
		return m[k]
	case map[string]map[string]any:
		if t, ok := m[k]; ok && t != nil {
			return t
		}
	}
	return nil
}

// fillEnv sets env to e's values.
func fillEnv(env map[string]any, e *event.Event) {
	env[nameKind], env[nameSource], env[nameStream], env[nameTime] = e.Kind, e.Source, e.Stream, e.Time
	attrs := e.Attrs
	if attrs == nil {
		attrs = map[string]any{}
	}
	env[nameAttrs] = attrs
}

// errTooLong is returned for an expression over MaxExprLen.
var errTooLong = fmt.Errorf("longer than %d bytes", MaxExprLen)

// compileWhen compiles a when expression (nil program for ""). The cost
// bound: at most MaxExprLen bytes and MaxExprNodes nodes; expr has no
// loops, only builtins over arrays (all, any, filter, map, ...), whose
// arrays are the event's attrs (bounded by the input size) or ranges,
// which count against the VM's memory budget (MemoryBudget per
// evaluation); repeat, the one builtin that can build a large value from
// a small one without the budget seeing it, is off. now() is off too:
// a condition sees the event's time, so that gateway rules test replays
// what the gateway decided.
func compileWhen(src string, tables map[string]Table) (*vm.Program, error) {
	if src == "" {
		return nil, nil
	}
	if len(src) > MaxExprLen {
		return nil, errTooLong
	}
	ts := map[string]map[string]any{}
	for name := range tables {
		ts[name] = nil
	}
	return expr.Compile(src,
		expr.Env(newEnv(ts)),
		expr.AsBool(),
		expr.MaxNodes(MaxExprNodes),
		expr.DisableBuiltin("repeat"),
		expr.DisableBuiltin("now"), // a condition depends on the event only: replays give what the gateway did
		expr.Patch(fetchPatch{}),
	)
}

// eval runs a compiled condition on env with m (the Set's VM, used under
// its lock: a VM per evaluation would allocate its stack each time).
func eval(m *vm.VM, p *vm.Program, env map[string]any) (bool, error) {
	if p == nil {
		return true, nil
	}
	m.MemoryBudget = MemoryBudget
	out, err := m.Run(p, env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, errors.New("condition is not a bool")
	}
	return b, nil
}
