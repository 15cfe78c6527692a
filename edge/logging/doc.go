// Package logging builds the gateway's log/slog logger: text or JSON, a
// minimum level, and a handler wrapper that rate-limits repeated warnings
// and errors, so that an uplink that stays down for an hour logs a line per
// interval with a count of what it held back, not a line per retry.
//
// Every component logs with a "component" attribute (buffer, uplink, mqtt,
// http, …), set once with Logger.With. The rate limit keys on the message
// and that attribute: the same message from the same component is written
// at most once per Options.RepeatEvery; the next one written after the
// interval carries "suppressed", the number held back since the last one.
package logging
