// Package rules is the gateway's edge rules engine: conditions over each
// event, written in expr (github.com/expr-lang/expr), with actions taken on
// the spot, uplink or not.
//
// A Rule matches events by stream, kind, source and topic variables, and
// its condition (when) sees the event (kind, source, stream, time, attrs)
// and the config's lookup tables. Its actions are alert (a derived event
// appended in the same commit as its cause), gpio (a command to an output),
// and the transforms drop, downsample (window aggregates per source and
// metric) and deadband. Compile checks every expression and setting; Set
// evaluates events in batches whose state changes apply only when the
// caller's commit succeeded (Outcome.Commit), so a refused batch retried
// later is evaluated as if for the first time.
//
// Nothing here does I/O except loading CSV tables (LoadTables) and the
// window marks a caller stores through Store.
package rules
