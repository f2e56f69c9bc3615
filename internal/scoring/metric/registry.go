package metric

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
)

// ErrUnknownMetric is returned by [Registry.Validate] and
// [Registry.Compute] for a metric name nobody registered.
var ErrUnknownMetric = errors.New("unknown metric")

// Func computes one metric for one model. It may be called concurrently
// for different models, must not modify in.Points, and should return a
// finite value; an error, a panic or a non-finite value is recorded as a
// [Failure] and the metric reads 0 for that model.
type Func func(in Input) (float64, error)

// validName keeps metric names usable as JSON keys, SQL-friendly column
// names and Starlark identifiers: [A-Za-z_][A-Za-z0-9_]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Registry maps metric names to functions. It starts with the built-ins;
// operators' Starlark metrics are added with Register at start-up.
type Registry struct {
	mu    sync.RWMutex
	funcs map[string]Func
}

// NewRegistry returns a registry holding the built-in metrics.
func NewRegistry() *Registry {
	return &Registry{funcs: builtins()}
}

// Register adds a metric. Replacing a name (built-in or not) is refused:
// a custom metric silently shadowing a built-in would change what every
// report means.
func (r *Registry) Register(name string, f Func) error {
	if !validName(name) {
		return fmt.Errorf("registering metric %q: name must be letters, digits and underscores, not starting with a digit", name)
	}
	if f == nil {
		return fmt.Errorf("registering metric %q: nil function", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.funcs[name]; ok {
		return fmt.Errorf("registering metric %q: already registered", name)
	}
	r.funcs[name] = f
	return nil
}

// Names returns the registered metric names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

// Validate checks configured metric names at start-up, so that a typo stops
// the process instead of silently producing no metric (the Python engine
// skipped unknown names).
func (r *Registry) Validate(names []string) error {
	_, err := r.lookup(names)
	return err
}

func (r *Registry) lookup(names []string) ([]Func, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	funcs := make([]Func, len(names))
	var unknown []string
	for i, n := range names {
		f, ok := r.funcs[n]
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", n))
			continue
		}
		funcs[i] = f
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: %s (known: %s)", ErrUnknownMetric, strings.Join(unknown, ", "), strings.Join(r.namesLocked(), ", "))
	}
	return funcs, nil
}

func (r *Registry) namesLocked() []string {
	names := make([]string, 0, len(r.funcs))
	for n := range r.funcs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Failure records one metric that could not be computed for one model. Its
// value in [Result.Values] is 0.
type Failure struct {
	Err     error
	Metric  string
	ModelID string
}

func (f Failure) Error() string {
	return fmt.Sprintf("metric %s of model %s: %v", f.Metric, f.ModelID, f.Err)
}

func (f Failure) Unwrap() error { return f.Err }

// Result holds the metrics of every model of a window.
type Result struct {
	// Failures lists the metrics that errored, panicked or were not
	// finite, ordered by model then metric; one failure never affects
	// other metrics or models.
	Failures []Failure
	// Values maps model id → metric name → value; every requested metric
	// of every model is present and finite.
	Values map[string]map[string]float64
}

// Compute evaluates the named metrics for every model of w, over the
// window's full set of scored predictions, with cross-model metrics joined
// on Point.Key. The work is spread over GOMAXPROCS goroutines. It fails
// only for unknown names or a cancelled ctx; metric-level problems are
// reported in Result.Failures.
func (r *Registry) Compute(ctx context.Context, names []string, w Window) (Result, error) {
	funcs, err := r.lookup(names)
	if err != nil {
		return Result{}, err
	}
	p, err := prepare(ctx, w)
	if err != nil {
		return Result{}, fmt.Errorf("preparing metric window: %w", err)
	}

	values := make([]map[string]float64, len(p.models))
	failures := make([][]Failure, len(p.models))
	caches := make([]*cache, len(p.models))
	err = parallel(ctx, len(p.models), func(worker, m int) {
		if caches[worker] == nil {
			caches[worker] = &cache{}
		}
		c := caches[worker]
		c.reset()
		in := Input{ModelID: p.models[m], Points: p.series[m].pts, c: c, m: m, win: p}
		vals := make(map[string]float64, len(names))
		for i, f := range funcs {
			v, err := call(f, in)
			if err != nil {
				failures[m] = append(failures[m], Failure{Err: err, Metric: names[i], ModelID: in.ModelID})
				v = 0
			}
			vals[names[i]] = v
		}
		values[m] = vals
	})
	if err != nil {
		return Result{}, fmt.Errorf("computing metrics: %w", err)
	}

	res := Result{Failures: []Failure{}, Values: make(map[string]map[string]float64, len(p.models))}
	for m, id := range p.models {
		res.Values[id] = values[m]
		res.Failures = append(res.Failures, failures[m]...)
	}
	return res, nil
}

// call isolates one metric evaluation: a panic (a bug in an operator's
// metric, say) must not take the whole scoring run down.
func call(f Func, in Input) (v float64, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			err = fmt.Errorf("panic: %v\n%s", rec, debug.Stack())
		}
	}()
	v, err = f(in)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("non-finite result %v", v)
	}
	return v, nil
}
