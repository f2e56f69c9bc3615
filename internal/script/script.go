package script

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/lib/math"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Defaults for [Options]. A pnl-like scoring function takes a few dozen steps, so the
// step limit leaves four orders of magnitude of headroom while still stopping a runaway
// loop within milliseconds.
const (
	DefaultMaxSteps uint64 = 1_000_000
	DefaultTimeout         = time.Second
)

// Errors that a call wraps when it is stopped, so callers can tell a misbehaving script
// from an ordinary runtime error with errors.Is.
var (
	// ErrStepLimit means the call executed more than Options.MaxSteps steps.
	ErrStepLimit = errors.New("step limit exceeded")
	// ErrTimeout means the call ran longer than Options.Timeout.
	ErrTimeout = errors.New("time limit exceeded")
)

// Options bounds and instruments a loaded script. The zero value is usable.
type Options struct {
	// MaxSteps is the Starlark step budget of one call (and of executing the file's top
	// level at load time). 0 means DefaultMaxSteps.
	MaxSteps uint64
	// Print receives the output of the script's print() calls. nil discards it: a
	// deterministic script must not depend on where its output goes.
	Print func(msg string)
	// Timeout is the wall-clock budget of one call. 0 means DefaultTimeout.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxSteps == 0 {
		o.MaxSteps = DefaultMaxSteps
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// fileOptions is the Starlark dialect operators write in. `while` and set() are allowed
// because they are ordinary Python and the step limit bounds loops; recursion stays
// disabled because its depth is bounded only by the Go stack, and top-level control
// flow and global reassignment stay disabled so a file's globals are plain definitions.
var fileOptions = syntax.FileOptions{
	Set:   true,
	While: true,
}

// predeclared holds the names every script sees besides the Starlark built-ins. It is
// never mutated after package initialisation.
var predeclared = starlark.StringDict{
	"math": math.Module,
}

// Func is a loaded Starlark callable. It is immutable after [Load] and safe for
// concurrent use by many goroutines.
type Func struct {
	fn      starlark.Callable
	opts    Options
	ref     Ref
	threads sync.Pool // of *runner
}

// Load reads path, executes it once in the sandbox and returns its global funcName.
// Syntax, resolution and top-level runtime errors come back with file:line:column;
// a missing or non-callable global is reported with the names that do exist.
func Load(path, funcName string, opts Options) (*Func, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", Ref{Func: funcName, Path: path}, err)
	}
	return LoadSource(path, src, funcName, opts)
}

// LoadRef is Load for a parsed `file.star:function` reference.
func LoadRef(ref Ref, opts Options) (*Func, error) {
	return Load(ref.Path, ref.Func, opts)
}

// LoadSource is Load for source already in memory; filename is used in positions and
// error messages. Tests and embedded scripts use it.
func LoadSource(filename string, src []byte, funcName string, opts Options) (*Func, error) {
	ref := Ref{Func: funcName, Path: filename}
	if err := checkIdent(funcName); err != nil {
		return nil, fmt.Errorf("loading %s: %w", ref, err)
	}
	opts = opts.withDefaults()

	file, prog, err := starlark.SourceProgramOptions(&fileOptions, filename, src, predeclared.Has)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", ref, describeCompileError(err))
	}
	if prog.NumLoads() > 0 {
		module, pos := prog.Load(0)
		return nil, fmt.Errorf("loading %s: %s: load(%q) is not allowed: scripts are self-contained", ref, pos, module)
	}

	f := &Func{opts: opts, ref: ref}
	r := f.newRunner()
	stop := r.arm(context.Background(), opts.Timeout)
	globals, err := prog.Init(r.thread, predeclared)
	stop()
	if err != nil {
		return nil, fmt.Errorf("loading %s: executing top level: %w", ref, r.describe(context.Background(), err, opts))
	}
	globals.Freeze() // frozen values may be shared by concurrent calls

	v, ok := globals[funcName]
	if !ok {
		return nil, fmt.Errorf("loading %s: %s has no global %q (globals: %s)", ref, filename, funcName, globalNames(globals))
	}
	fn, ok := v.(starlark.Callable)
	if !ok {
		return nil, fmt.Errorf("loading %s: %s: %q is a %s, not a function", ref, bindingPos(file, funcName, filename), funcName, v.Type())
	}
	f.fn = fn
	f.threads.New = func() any { return f.newRunner() }
	return f, nil
}

// bindingPos returns the position of the top-level statement that binds name, or just
// the file name when there is none to point at.
func bindingPos(f *syntax.File, name, filename string) string {
	for _, stmt := range f.Stmts {
		switch st := stmt.(type) {
		case *syntax.DefStmt:
			if st.Name.Name == name {
				return st.Def.String()
			}
		case *syntax.AssignStmt:
			if id, ok := st.LHS.(*syntax.Ident); ok && id.Name == name {
				return id.NamePos.String()
			}
		}
	}
	return filename
}

func globalNames(g starlark.StringDict) string {
	names := g.Keys()
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// describeCompileError keeps the position of every problem: the resolver may report
// several undefined names at once and the operator should see all of them.
func describeCompileError(err error) error {
	var list resolve.ErrorList
	if errors.As(err, &list) && len(list) > 1 {
		msgs := make([]string, 0, len(list))
		for _, e := range list {
			msgs = append(msgs, e.Error())
		}
		return fmt.Errorf("%w (and %d more: %s)", err, len(msgs)-1, strings.Join(msgs[1:], "; "))
	}
	return err
}

// Ref returns the reference the function was loaded from.
func (f *Func) Ref() Ref { return f.ref }

// String returns the `file.star:function` reference, for logs and error messages.
func (f *Func) String() string { return f.ref.String() }

// CheckArity reports an error, positioned at the def, unless the function accepts n
// positional arguments. Callers check at start-up so that a scoring function written
// with the wrong signature stops the process instead of failing every prediction.
func (f *Func) CheckArity(n int) error {
	fn, ok := f.fn.(*starlark.Function)
	if !ok {
		return nil // a built-in bound to a global; its arity is checked when called
	}
	positional := fn.NumParams() - fn.NumKwonlyParams()
	if fn.HasVarargs() {
		positional--
	}
	if fn.HasKwargs() {
		positional--
	}
	required := 0
	for i := range positional {
		if fn.ParamDefault(i) == nil {
			required++
		}
	}
	if n < required || (n > positional && !fn.HasVarargs()) {
		return fmt.Errorf("%s: %s: %s takes %d positional parameter(s), must accept %d", f.ref, fn.Position(), fn.Name(), positional, n)
	}
	return nil
}

// Call converts args with [ToValue], calls the function and converts the result with
// [FromValue].
func (f *Func) Call(ctx context.Context, args ...any) (any, error) {
	sargs := make(starlark.Tuple, len(args))
	for i, a := range args {
		v, err := ToValue(a)
		if err != nil {
			return nil, fmt.Errorf("calling %s: converting argument %d: %w", f.ref, i+1, err)
		}
		sargs[i] = v
	}
	res, err := f.CallValues(ctx, sargs...)
	if err != nil {
		return nil, err
	}
	out, err := FromValue(res)
	if err != nil {
		return nil, fmt.Errorf("calling %s: converting result: %w", f.ref, err)
	}
	return out, nil
}

// CallValues calls the function with Starlark arguments and returns the raw Starlark
// result, for callers that build or inspect Starlark values themselves and want to
// skip a conversion. The arguments must not be used concurrently by other calls.
func (f *Func) CallValues(ctx context.Context, args ...starlark.Value) (starlark.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("calling %s: %w", f.ref, err)
	}
	r := f.threads.Get().(*runner) //nolint:forcetypeassert // the pool only holds runners
	r.reset()
	stop := r.arm(ctx, f.opts.Timeout)
	res, err := starlark.Call(r.thread, f.fn, args, nil)
	if stop() {
		f.threads.Put(r) // only reuse threads that no late timer can still cancel
	}
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", f.ref, r.describe(ctx, err, f.opts))
	}
	return res, nil
}

// Reasons a thread was cancelled, recorded before cancelling so the resulting error can
// be classified without parsing Starlark's message.
const (
	stopNone int32 = iota
	stopSteps
	stopTimeout
	stopContext
)

// runner is a Starlark thread plus the reason it was stopped. Threads are pooled
// because a thread keeps its frame stack between calls, which saves allocations.
type runner struct {
	stopped atomic.Int32
	thread  *starlark.Thread
}

func (f *Func) newRunner() *runner {
	r := &runner{thread: &starlark.Thread{Name: f.ref.String()}}
	r.thread.SetMaxExecutionSteps(f.opts.MaxSteps)
	r.thread.OnMaxSteps = func(*starlark.Thread) { r.cancel(stopSteps) }
	r.thread.Load = func(*starlark.Thread, string) (starlark.StringDict, error) {
		return nil, errors.New("load is not allowed")
	}
	printFn := f.opts.Print
	r.thread.Print = func(_ *starlark.Thread, msg string) {
		if printFn != nil {
			printFn(msg)
		}
	}
	return r
}

func (r *runner) reset() {
	r.thread.Steps = 0
	r.stopped.Store(stopNone)
	r.thread.Uncancel()
}

func (r *runner) cancel(why int32) {
	r.stopped.CompareAndSwap(stopNone, why)
	r.thread.Cancel(stopText(why))
}

// arm starts the wall-clock limit and the context watch. The returned stop function
// disarms both and reports whether neither had fired or is firing, i.e. whether the
// thread can be reused safely.
func (r *runner) arm(ctx context.Context, timeout time.Duration) (stop func() bool) {
	timer := time.AfterFunc(timeout, func() { r.cancel(stopTimeout) })
	if ctx.Done() == nil {
		return timer.Stop
	}
	stopCtx := context.AfterFunc(ctx, func() { r.cancel(stopContext) })
	return func() bool {
		a := timer.Stop()
		b := stopCtx()
		return a && b
	}
}

func stopText(why int32) string {
	switch why {
	case stopSteps:
		return ErrStepLimit.Error()
	case stopTimeout:
		return ErrTimeout.Error()
	case stopContext:
		return "context done"
	}
	return "cancelled"
}

// describe turns a Starlark error into one line that names the innermost script
// position, and wraps the sentinel that explains a cancellation.
func (r *runner) describe(ctx context.Context, err error, opts Options) error {
	switch r.stopped.Load() {
	case stopSteps:
		return fmt.Errorf("%w (%d steps)%s", ErrStepLimit, opts.MaxSteps, where(err))
	case stopTimeout:
		return fmt.Errorf("%w (%s)%s", ErrTimeout, opts.Timeout, where(err))
	case stopContext:
		if ctx.Err() != nil {
			return fmt.Errorf("%w%s", context.Cause(ctx), where(err))
		}
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		if pos := innermost(ee); pos != "" {
			return fmt.Errorf("%s: %w", pos, ee)
		}
	}
	return err
}

// where returns " at file:line:col" for the script frame that was running.
func where(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		if pos := innermost(ee); pos != "" {
			return " at " + pos
		}
	}
	return ""
}

// innermost returns the position of the deepest frame that belongs to a script rather
// than to a built-in, which is the line an operator needs to look at.
func innermost(ee *starlark.EvalError) string {
	for _, fr := range slices.Backward(ee.CallStack) {
		if fr.Pos.IsValid() && fr.Pos.Filename() != "<builtin>" {
			return fr.Pos.String()
		}
	}
	return ""
}
