package ensemble

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

var (
	// ErrInvalidSpec is returned for configuration that cannot work: bad
	// names, unknown strategies, malformed filters. It is a start-up error.
	ErrInvalidSpec = errors.New("invalid ensemble configuration")

	// ErrNoCandidates is returned when no model survives the filters, so
	// the ensemble has nothing to combine this time; the caller skips it.
	ErrNoCandidates = errors.New("no candidate models")
)

// virtualPrefix and virtualSuffix frame ensemble model ids; the report API
// hides ids of this shape unless include_ensembles=true.
const (
	virtualPrefix = "__ensemble_"
	virtualSuffix = "__"
)

// VirtualModelID returns the model id under which ensemble name is stored
// and scored, the Python engine's "__ensemble_<name>__".
func VirtualModelID(name string) string {
	return virtualPrefix + name + virtualSuffix
}

// IsVirtual reports whether a model id is an ensemble's, so that listings
// and cross-model metrics can leave ensembles out.
func IsVirtual(modelID string) bool {
	return len(modelID) > len(virtualPrefix)+len(virtualSuffix) &&
		strings.HasPrefix(modelID, virtualPrefix) && strings.HasSuffix(modelID, virtualSuffix)
}

// Candidate is one real model as the ensemble sees it.
type Candidate struct {
	// Metrics are the model's latest metrics (snapshot summary fields and
	// computed metrics), read by the filters. Non-finite values count as
	// missing.
	Metrics map[string]float64
	ModelID string
	// Signals are the model's recent predicted values, read by
	// inverse_variance. Non-finite values are skipped.
	Signals []float64
}

// Spec is one validated ensemble configuration.
type Spec struct {
	// Filters run in order, each on the survivors of the previous one.
	Filters  []Filter
	Name     string
	Strategy Strategy
}

// ParseSpec validates an ensembles entry of crunch_config.yaml: a name made
// of letters, digits, '-' and '_' (it becomes part of a model id), a
// strategy (empty means inverse_variance) and filter expressions such as
// "top_n(5)" or "min_metric(ic, 0.01)".
func ParseSpec(name, strategy string, filters []string) (Spec, error) {
	if !validName(name) {
		return Spec{}, fmt.Errorf("%w: ensemble name %q must be non-empty letters, digits, '-' or '_'", ErrInvalidSpec, name)
	}
	st, err := ParseStrategy(strategy)
	if err != nil {
		return Spec{}, fmt.Errorf("ensemble %q: %w", name, err)
	}
	spec := Spec{Filters: make([]Filter, 0, len(filters)), Name: name, Strategy: st}
	for _, f := range filters {
		flt, err := ParseFilter(f)
		if err != nil {
			return Spec{}, fmt.Errorf("ensemble %q: %w", name, err)
		}
		spec.Filters = append(spec.Filters, flt)
	}
	return spec, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c != '_' && c != '-' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ModelID is the ensemble's virtual model id.
func (s Spec) ModelID() string {
	return VirtualModelID(s.Name)
}

// Weights selects the candidates through the filters and weighs the
// survivors with the strategy; the weights are positive and sum to 1.
// Ensemble candidates (virtual ids) are never included, so an ensemble
// cannot feed on itself.
func (s Spec) Weights(cands []Candidate) (map[string]float64, error) {
	kept := slices.DeleteFunc(slices.Clone(cands), func(c Candidate) bool { return IsVirtual(c.ModelID) })
	for _, f := range s.Filters {
		kept = f.Apply(kept)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("ensemble %q: %w", s.Name, ErrNoCandidates)
	}
	return s.Strategy.Weights(kept), nil
}

// Strategy turns the selected candidates into weights summing to 1.
type Strategy interface {
	// Name is the configuration name, e.g. "inverse_variance".
	Name() string
	// Weights returns one positive weight per candidate (by model id),
	// summing to 1; cands is never empty.
	Weights(cands []Candidate) map[string]float64
}

// ParseStrategy resolves a built-in strategy name; empty means
// inverse_variance, the Python engine's default.
func ParseStrategy(s string) (Strategy, error) {
	switch strings.TrimSpace(s) {
	case "", InverseVariance{}.Name():
		return InverseVariance{}, nil
	case EqualWeight{}.Name():
		return EqualWeight{}, nil
	}
	return nil, fmt.Errorf("%w: unknown strategy %q (want inverse_variance or equal_weight)", ErrInvalidSpec, s)
}

// EqualWeight gives every selected model the same weight.
type EqualWeight struct{}

// Name implements Strategy.
func (EqualWeight) Name() string { return "equal_weight" }

// Weights implements Strategy.
func (EqualWeight) Weights(cands []Candidate) map[string]float64 {
	w := make(map[string]float64, len(cands))
	for _, c := range cands {
		w[c.ModelID] = 1 / float64(len(cands))
	}
	return w
}

// InverseVariance weighs each model by 1/variance of its recent signals,
// so that erratic models count less. A model with fewer than two finite
// signals or a variance below 1e-12 gets raw weight 1 (no evidence either
// way), as in the Python engine.
type InverseVariance struct{}

// Name implements Strategy.
func (InverseVariance) Name() string { return "inverse_variance" }

// Weights implements Strategy.
func (InverseVariance) Weights(cands []Candidate) map[string]float64 {
	raw := make(map[string]float64, len(cands))
	var total float64
	for _, c := range cands {
		w := 1.0
		if v, n := variance(c.Signals); n >= 2 && v >= 1e-12 {
			w = 1 / v
		}
		raw[c.ModelID] = w
		total += w
	}
	for id := range raw {
		raw[id] /= total
	}
	return raw
}

// variance is the population variance of the finite values, and how many
// there were.
func variance(v []float64) (float64, int) {
	var sum float64
	n := 0
	for _, x := range v {
		if finite(x) {
			sum += x
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	mean := sum / float64(n)
	var ss float64
	for _, x := range v {
		if finite(x) {
			ss += (x - mean) * (x - mean)
		}
	}
	return ss / float64(n), n
}

// Filter narrows the candidate list. Implementations must not modify the
// input slice's elements.
type Filter interface {
	Apply(cands []Candidate) []Candidate
	// String returns the configuration form, e.g. "top_n(5, value)".
	String() string
}

// TopN keeps the N candidates with the highest Metric (ties broken by model
// id, so the selection is deterministic). Candidates without a finite
// value rank last.
type TopN struct {
	Metric string
	N      int
}

// Apply implements Filter.
func (f TopN) Apply(cands []Candidate) []Candidate {
	sorted := slices.Clone(cands)
	slices.SortStableFunc(sorted, func(a, b Candidate) int {
		va, oka := metricOf(a, f.Metric)
		vb, okb := metricOf(b, f.Metric)
		switch {
		case oka && !okb:
			return -1
		case !oka && okb:
			return 1
		case oka && va != vb:
			if va > vb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ModelID, b.ModelID)
	})
	return sorted[:min(f.N, len(sorted))]
}

func (f TopN) String() string { return fmt.Sprintf("top_n(%d, %s)", f.N, f.Metric) }

// MinMetric keeps the candidates whose Metric is at least Threshold. A
// candidate lacking the metric is dropped: the Python engine treated it as
// 0, which let unmeasured models pass negative thresholds.
type MinMetric struct {
	Metric    string
	Threshold float64
}

// Apply implements Filter.
func (f MinMetric) Apply(cands []Candidate) []Candidate {
	var out []Candidate
	for _, c := range cands {
		if v, ok := metricOf(c, f.Metric); ok && v >= f.Threshold {
			out = append(out, c)
		}
	}
	return out
}

func (f MinMetric) String() string {
	return fmt.Sprintf("min_metric(%s, %s)", f.Metric, strconv.FormatFloat(f.Threshold, 'g', -1, 64))
}

func metricOf(c Candidate, name string) (float64, bool) {
	v, ok := c.Metrics[name]
	return v, ok && finite(v)
}

// DefaultRankMetric is the metric top_n ranks by when none is given: the
// snapshot's value field, as in the Python engine.
const DefaultRankMetric = "value"

// ParseFilter parses a filter expression: "top_n(N)", "top_n(N, metric)"
// or "min_metric(metric, threshold)". Metric names may be quoted.
func ParseFilter(s string) (Filter, error) {
	name, args, err := splitCall(s)
	if err != nil {
		return nil, fmt.Errorf("%w: filter %q: %w", ErrInvalidSpec, s, err)
	}
	switch name {
	case "top_n":
		if len(args) < 1 || len(args) > 2 {
			return nil, fmt.Errorf("%w: filter %q: top_n takes (n) or (n, metric)", ErrInvalidSpec, s)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: filter %q: n must be a positive integer, got %q", ErrInvalidSpec, s, args[0])
		}
		f := TopN{Metric: DefaultRankMetric, N: n}
		if len(args) == 2 {
			if f.Metric, err = metricArg(args[1]); err != nil {
				return nil, fmt.Errorf("%w: filter %q: %w", ErrInvalidSpec, s, err)
			}
		}
		return f, nil
	case "min_metric":
		if len(args) != 2 {
			return nil, fmt.Errorf("%w: filter %q: min_metric takes (metric, threshold)", ErrInvalidSpec, s)
		}
		metric, err := metricArg(args[0])
		if err != nil {
			return nil, fmt.Errorf("%w: filter %q: %w", ErrInvalidSpec, s, err)
		}
		thr, err := strconv.ParseFloat(args[1], 64)
		if err != nil || !finite(thr) {
			return nil, fmt.Errorf("%w: filter %q: threshold must be a finite number, got %q", ErrInvalidSpec, s, args[1])
		}
		return MinMetric{Metric: metric, Threshold: thr}, nil
	}
	return nil, fmt.Errorf("%w: filter %q: unknown filter %q (want top_n or min_metric)", ErrInvalidSpec, s, name)
}

// splitCall splits "name(a, b)" into its name and trimmed arguments.
func splitCall(s string) (string, []string, error) {
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return "", nil, errors.New("want name(arguments)")
	}
	name := strings.TrimSpace(s[:open])
	inner := strings.TrimSpace(s[open+1 : len(s)-1])
	if inner == "" {
		return name, nil, nil
	}
	args := strings.Split(inner, ",")
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
		if args[i] == "" {
			return "", nil, fmt.Errorf("empty argument %d", i+1)
		}
	}
	return name, args, nil
}

// metricArg accepts a metric name, bare or quoted with ' or ".
func metricArg(a string) (string, error) {
	if len(a) >= 2 && (a[0] == '\'' || a[0] == '"') && a[len(a)-1] == a[0] {
		a = a[1 : len(a)-1]
	}
	if !validName(a) || strings.Contains(a, "-") {
		return "", fmt.Errorf("invalid metric name %q", a)
	}
	return a, nil
}

// Prediction is one model's predicted value for one key (the input and
// scope it answered).
type Prediction struct {
	Key     string
	ModelID string
	Value   float64
}

// Combine returns the ensemble prediction per key: the weighted mean of the
// values of the weighted models that predicted that key, the weights
// renormalised over those present, so a model that missed a key does not
// drag the combination toward zero. Non-finite values and models without a
// positive weight are ignored; a key nobody weighted is absent from the
// result. If a model appears twice for a key only its later value counts.
// Sums run in input order, so equal input gives bit-identical output.
func Combine(weights map[string]float64, preds []Prediction) map[string]float64 {
	type modelKey struct{ key, model string }
	last := make(map[modelKey]int, len(preds))
	for i, p := range preds {
		last[modelKey{p.Key, p.ModelID}] = i
	}
	type acc struct{ sum, w float64 }
	byKey := make(map[string]acc)
	for i, p := range preds {
		w := weights[p.ModelID]
		if last[modelKey{p.Key, p.ModelID}] != i || !(w > 0) || !finite(w) || !finite(p.Value) {
			continue
		}
		a := byKey[p.Key]
		a.sum += w * p.Value
		a.w += w
		byKey[p.Key] = a
	}
	out := make(map[string]float64, len(byKey))
	for k, a := range byKey {
		if v := a.sum / a.w; finite(v) {
			out[k] = v
		}
	}
	return out
}

func finite(f float64) bool {
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}
