// Package script loads operator callables written in Starlark, the Python dialect
// from go.starlark.net, and calls them from Go.
//
// Operators customise a competition with small functions (SCORING_FUNCTION,
// RESOLVE_GROUND_TRUTH, MODEL_SCORE_AGGREGATOR, …) named `path/to/file.star:function`.
// The Python engine imported arbitrary Python for this, which made scoring
// non-deterministic, unbounded and able to touch the network or the database. Starlark
// gives the same syntax with none of that:
//
//   - No I/O. Starlark has no file, network, clock or randomness built-ins, and this
//     package refuses every load statement, so a script sees only its arguments, the
//     Starlark built-ins and a `math` module.
//   - Deterministic. Go maps are converted to Starlark dicts in sorted key order, so a
//     script that iterates over a dict sees the same order on every run and every
//     machine, and floating-point sums come out bit-identical.
//   - Bounded. Every call runs with a step limit ([Options.MaxSteps]) and a wall-clock
//     limit ([Options.Timeout]) and honours context cancellation; an infinite loop
//     becomes an error wrapping [ErrStepLimit] or [ErrTimeout], not a hung worker.
//     Recursion is disabled, so a runaway recursive function cannot exhaust the Go stack.
//
// A file is parsed, compiled and executed once by [Load]; its globals are then frozen,
// which makes the resulting [Func] safe for concurrent calls. Each call borrows a
// Starlark thread from a pool, so the hot path allocates only for argument and result
// conversion.
//
// Values cross the boundary as plain Go data: nil, bool, integers, floats, strings,
// slices and maps with string keys (see [ToValue] and [FromValue]). Anything else is
// rejected with an error that names where in the value it was found.
//
// Known limit: Starlark built-ins that allocate (for example `"x" * 10**9`) run to
// completion before the step counter or the timer is consulted, so memory is not
// bounded. Operator scripts are trusted configuration, not participant code.
package script
