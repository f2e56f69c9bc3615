package scoring

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/crunchnode/crunch-node/internal/script"
)

// FeedPoint is one feed record as ground-truth resolvers see it. It is deliberately
// smaller than the stored record: resolvers need the time, the subject and the
// numeric values, nothing about where the record came from.
type FeedPoint struct {
	// Subject is the feed subject, e.g. "BTCUSDT"; it becomes the ground truth's symbol.
	Subject string
	// TsEvent is the event time: the open time of a candle, the time of a tick.
	TsEvent time.Time
	// Values holds open/high/low/close/volume for candles, price for ticks.
	Values map[string]float64
}

// Codes of [Resolution.Code]. They are stable strings so callers can store them, count
// them in metrics and decide on retries without parsing messages.
const (
	// CodeInvalidPrice: a price field is present but NaN or infinite.
	CodeInvalidPrice = "invalid_price"
	// CodeMissingPrice: a record has neither the preferred field nor "price".
	CodeMissingPrice = "missing_price"
	// CodeNoRecords: the window holds no feed record (yet).
	CodeNoRecords = "no_records"
	// CodeResolverNone: a script resolver returned None.
	CodeResolverNone = "resolver_returned_none"
	// CodeStale: the newest record is too old for the prediction's horizon.
	CodeStale = "stale"
	// CodeZeroEntry: the entry price is 0, so profit (a ratio to it) is undefined.
	CodeZeroEntry = "zero_entry_price"
)

// Resolution is the outcome of resolving one prediction's ground truth: either a
// ground-truth dict, or a code and a human-readable reason saying why not. Being
// unresolvable is a normal outcome (the feed may lag, a price may be bad) rather than
// an error, so it is a value the caller records.
type Resolution struct {
	// Code is one of the Code* constants; empty when resolved.
	Code string
	// GroundTruth is the resolved ground truth; nil when unresolved.
	GroundTruth map[string]any
	// Reason explains Code with the numbers involved; empty when resolved.
	Reason string
	// Retryable is true when more feed data arriving later could resolve the
	// prediction (no records yet, stale), false when the data present can never
	// give a ground truth (zero entry price). Callers use it to stop re-examining
	// hopeless predictions, which the Python engine did forever.
	Retryable bool
}

// OK reports whether a ground truth was resolved.
func (r Resolution) OK() bool { return r.GroundTruth != nil }

func unresolved(code string, retryable bool, format string, args ...any) Resolution {
	return Resolution{Code: code, Reason: fmt.Sprintf(format, args...), Retryable: retryable}
}

// ResolveInput is what a resolver gets for one prediction.
type ResolveInput struct {
	// PerformedAt is when the prediction was made (start of the window).
	PerformedAt time.Time
	// Prediction is the prediction as a dict (id, model_id, scope, inference_output,
	// …). The default resolver ignores it; script resolvers receive it as their second
	// argument, as in the Python engine.
	Prediction map[string]any
	// Records are the feed records with TsEvent in [PerformedAt, ResolvableAt],
	// ascending by TsEvent.
	Records []FeedPoint
	// ResolvableAt is when the prediction's horizon ends (end of the window).
	ResolvableAt time.Time
}

// Resolver turns feed records into a prediction's ground truth. An error means the
// resolver itself is broken (a script raised, returned the wrong type, timed out) as
// opposed to the data not allowing a ground truth, which is an unresolved Resolution.
type Resolver interface {
	Resolve(ctx context.Context, in ResolveInput) (Resolution, error)
}

// GroundTruthConfig holds the ground-truth settings of crunch_config.yaml.
type GroundTruthConfig struct {
	// Granularity is how long a record covers: 1m for one-minute candles, 0 for
	// ticks. The staleness guard measures from TsEvent+Granularity, i.e. from the
	// candle's close. The Python engine measured from the candle's open, so with
	// 1-minute candles and short horizons it discarded most predictions as stale.
	Granularity time.Duration
	// MaxStalenessFraction f rejects a window whose newest record ends more than
	// f × horizon before ResolvableAt. 0 disables the guard. Default (Python) 0.2.
	MaxStalenessFraction float64
}

// Validate reports settings that cannot work, naming the field.
func (c GroundTruthConfig) Validate() error {
	if math.IsNaN(c.MaxStalenessFraction) || c.MaxStalenessFraction < 0 || c.MaxStalenessFraction > 1 {
		return fmt.Errorf("ground_truth.max_staleness_fraction: %v is outside [0, 1]", c.MaxStalenessFraction)
	}
	if c.Granularity < 0 {
		return fmt.Errorf("ground_truth granularity: %s is negative", c.Granularity)
	}
	return nil
}

// checkWindow validates the ordering contract and applies the staleness guard, which
// applies to every resolver, built-in or scripted, as in the Python engine.
func checkWindow(in ResolveInput, cfg GroundTruthConfig) (Resolution, bool, error) {
	for i := 1; i < len(in.Records); i++ {
		if in.Records[i].TsEvent.Before(in.Records[i-1].TsEvent) {
			return Resolution{}, false, fmt.Errorf("feed records not ascending: record %d at %s is before record %d at %s",
				i, in.Records[i].TsEvent.Format(time.RFC3339Nano), i-1, in.Records[i-1].TsEvent.Format(time.RFC3339Nano))
		}
	}
	if len(in.Records) == 0 || cfg.MaxStalenessFraction <= 0 {
		return Resolution{}, true, nil
	}
	// A zero or negative horizon (immediate resolution) is resolved by the caller from
	// the stored input, not from the feed; the guard would reject everything there.
	horizon := in.ResolvableAt.Sub(in.PerformedAt)
	if horizon <= 0 {
		return Resolution{}, true, nil
	}
	last := in.Records[len(in.Records)-1]
	asOf := last.TsEvent.Add(cfg.Granularity)
	lag := in.ResolvableAt.Sub(asOf)
	allowed := time.Duration(cfg.MaxStalenessFraction * float64(horizon))
	if lag > allowed {
		return unresolved(CodeStale, true,
			"newest record ends at %s, %s before resolvable_at; at most %s (%.3g × %s horizon) is allowed",
			asOf.UTC().Format(time.RFC3339), lag, allowed, cfg.MaxStalenessFraction, horizon), false, nil
	}
	return Resolution{}, true, nil
}

// DefaultResolver is the built-in RESOLVE_GROUND_TRUTH ("default"); see
// [ResolveDefault].
type DefaultResolver struct {
	Config GroundTruthConfig
}

// Resolve implements [Resolver].
func (d DefaultResolver) Resolve(_ context.Context, in ResolveInput) (Resolution, error) {
	return ResolveDefault(in, d.Config)
}

// ResolveDefault is the default ground-truth rule of the Python engine, as a pure
// function of the records in the window:
//
//   - no records: unresolved (no_records, retryable);
//   - staleness guard (see [GroundTruthConfig]);
//   - one record: entry = its open, resolved = its close;
//   - two or more: entry = the first record's close, resolved = the last one's close;
//   - "price" stands in for open/close when the record lacks them (ticks);
//   - entry 0: unresolved (zero_entry_price, not retryable).
//
// The ground truth is {symbol, asof_ts (ms of the last record's TsEvent),
// entry_price, resolved_price, profit = (resolved−entry)/|entry|, direction_up =
// resolved > entry}. Negative prices are accepted (some markets have them; |entry|
// keeps the sign of profit meaningful).
//
// Unlike the Python `close or price`, a field that is present is authoritative even
// when it is 0.0: a zero close is a real (if suspicious) value, not a cue to look at
// another field. A zero entry makes the prediction unresolvable with a reason; a zero
// resolved price is accepted as a real value (profit −100%), since rejecting garbage
// prices is the feed parsers' job. NaN and ±Inf are never prices.
func ResolveDefault(in ResolveInput, cfg GroundTruthConfig) (Resolution, error) {
	if len(in.Records) == 0 {
		return unresolved(CodeNoRecords, true, "no feed records between %s and %s",
			in.PerformedAt.UTC().Format(time.RFC3339), in.ResolvableAt.UTC().Format(time.RFC3339)), nil
	}
	if res, ok, err := checkWindow(in, cfg); err != nil || !ok {
		return res, err
	}
	first, last := in.Records[0], in.Records[len(in.Records)-1]
	entryField, resolvedField := "close", "close"
	if len(in.Records) == 1 {
		entryField = "open"
	}
	entry, res, ok := price(first, entryField, "entry")
	if !ok {
		return res, nil
	}
	resolved, res, ok := price(last, resolvedField, "resolved")
	if !ok {
		return res, nil
	}
	if entry == 0 {
		return unresolved(CodeZeroEntry, false, "entry price (%s of record at %s) is 0, so profit is undefined",
			entryField, first.TsEvent.UTC().Format(time.RFC3339)), nil
	}
	return Resolution{GroundTruth: map[string]any{
		"asof_ts":        last.TsEvent.UnixMilli(),
		"direction_up":   resolved > entry,
		"entry_price":    entry,
		"profit":         (resolved - entry) / math.Abs(entry),
		"resolved_price": resolved,
		"symbol":         last.Subject,
	}}, nil
}

// price reads field, else "price", from a record. Presence decides, not truthiness.
func price(r FeedPoint, field, role string) (float64, Resolution, bool) {
	v, ok := r.Values[field]
	if !ok {
		field = "price"
		v, ok = r.Values[field]
	}
	at := r.TsEvent.UTC().Format(time.RFC3339)
	if !ok {
		return 0, unresolved(CodeMissingPrice, false, "%s price: record at %s has neither %q nor \"price\"", role, at, field), false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, unresolved(CodeInvalidPrice, false, "%s price: %s of record at %s is %v", role, field, at, v), false
	}
	return v, Resolution{}, true
}

// StarlarkResolver runs an operator's RESOLVE_GROUND_TRUTH script
// `(feed_records, prediction) -> dict | None`.
//
// feed_records is a list of dicts {subject, ts_event (Unix seconds, as the Python
// engine's FeedDataRecord), ts_event_ms, values: {close: …}}; prediction is
// [ResolveInput.Prediction]. The staleness guard runs before the script; an empty
// window is still passed to it, since a script may resolve from the prediction alone.
type StarlarkResolver struct {
	config GroundTruthConfig
	fn     *script.Func
}

// NewStarlarkResolver checks that fn accepts (feed_records, prediction).
func NewStarlarkResolver(fn *script.Func, cfg GroundTruthConfig) (*StarlarkResolver, error) {
	if err := fn.CheckArity(2); err != nil {
		return nil, fmt.Errorf("ground truth resolver: %w", err)
	}
	return &StarlarkResolver{config: cfg, fn: fn}, nil
}

// Resolve implements [Resolver].
func (s *StarlarkResolver) Resolve(ctx context.Context, in ResolveInput) (Resolution, error) {
	if res, ok, err := checkWindow(in, s.config); err != nil || !ok {
		return res, err
	}
	records := make([]any, len(in.Records))
	for i, r := range in.Records {
		records[i] = map[string]any{
			"subject":     r.Subject,
			"ts_event":    r.TsEvent.Unix(),
			"ts_event_ms": r.TsEvent.UnixMilli(),
			"values":      r.Values,
		}
	}
	prediction := in.Prediction
	if prediction == nil {
		prediction = map[string]any{}
	}
	out, err := s.fn.Call(ctx, records, prediction)
	if err != nil {
		return Resolution{}, fmt.Errorf("resolving ground truth: %w", err)
	}
	switch gt := out.(type) {
	case nil:
		return unresolved(CodeResolverNone, true, "%s returned None", s.fn), nil
	case map[string]any:
		if err := checkJSONValue(gt); err != nil {
			return Resolution{}, fmt.Errorf("resolving ground truth: %s returned %w", s.fn, err)
		}
		return Resolution{GroundTruth: gt}, nil
	default:
		return Resolution{}, fmt.Errorf("resolving ground truth: %s returned %s, want a dict or None", s.fn, typeName(out))
	}
}

// NewResolver builds the RESOLVE_GROUND_TRUTH named by ref: "" or "default" for
// [DefaultResolver], or `file.star:function` for a [StarlarkResolver].
func NewResolver(ref string, cfg GroundTruthConfig, opts script.Options) (Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case ref == "" || ref == "default":
		return DefaultResolver{Config: cfg}, nil
	case script.IsRef(ref):
		r, err := script.ParseRef(ref)
		if err != nil {
			return nil, fmt.Errorf("RESOLVE_GROUND_TRUTH: %w", err)
		}
		fn, err := script.LoadRef(r, opts)
		if err != nil {
			return nil, fmt.Errorf("RESOLVE_GROUND_TRUTH: %w", err)
		}
		return NewStarlarkResolver(fn, cfg)
	}
	return nil, fmt.Errorf("RESOLVE_GROUND_TRUTH: unknown resolver %q (want \"default\" or path/to/file.star:function)", ref)
}
