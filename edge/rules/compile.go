package rules

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is what a when expression sees. Its fields are checked at
// compile time: a misspelt name ("atrs") refuses the config.
type exprEnv struct {
	Kind   string                    `expr:"kind"`
	Source string                    `expr:"source"`
	Stream string                    `expr:"stream"`
	Time   time.Time                 `expr:"time"`
	Attrs  map[string]any            `expr:"attrs"`
	Tables map[string]map[string]any `expr:"tables"`
}

// errTooLong is returned for an expression over MaxExprLen.
var errTooLong = fmt.Errorf("longer than %d bytes", MaxExprLen)

// compileWhen compiles a when expression (nil program for ""). The cost
// bound: at most MaxExprLen bytes and MaxExprNodes nodes; expr has no
// loops, only builtins over arrays (all, any, filter, map, ...), whose
// arrays are the event's attrs (bounded by the input size) or ranges,
// which count against the VM's memory budget (MemoryBudget per
// evaluation); repeat, the one builtin that can build a large value from
// a small one without the budget seeing it, is off.
func compileWhen(src string, tables map[string]Table) (*vm.Program, error) {
	if src == "" {
		return nil, nil
	}
	if len(src) > MaxExprLen {
		return nil, errTooLong
	}
	env := exprEnv{Tables: map[string]map[string]any{}}
	for name := range tables {
		env.Tables[name] = nil
	}
	return expr.Compile(src,
		expr.Env(env),
		expr.AsBool(),
		expr.MaxNodes(MaxExprNodes),
		expr.DisableBuiltin("repeat"),
	)
}

// vms reuses the VMs that evaluate conditions (a VM per evaluation would
// allocate its stack each time).
var vms = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: MemoryBudget} }}

// eval runs a compiled condition on env.
func eval(p *vm.Program, env *exprEnv) (bool, error) {
	if p == nil {
		return true, nil
	}
	m := vms.Get().(*vm.VM)
	out, err := m.Run(p, env)
	m.MemoryBudget = MemoryBudget
	vms.Put(m)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, errors.New("condition is not a bool")
	}
	return b, nil
}
