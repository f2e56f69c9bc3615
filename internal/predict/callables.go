package predict

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"

	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
	"github.com/crunchnode/crunch-node/internal/script"
)

// Tick is what a tick's operator callables may look at besides their main argument: the
// scope being predicted and, once built, the model input. Scripts receive it as their
// optional second argument (see [InputBuilder] and [Validator]).
type Tick struct {
	// Input is the model input; the predict job sets it once built, before the first
	// validation, and leaves it alone afterwards.
	Input map[string]any
	// Scope is the prediction scope as stored with each prediction.
	Scope map[string]any
	// ScopeKey names the schedule.
	ScopeKey string
	// Slot is the schedule slot the tick is for.
	Slot time.Time
	// Subject is the feed subject, e.g. BTCUSDT.
	Subject string
	// Symbol is the subject as models know it (feed.subject_mapping), e.g. BTC.
	Symbol string

	// validatorContext is the frozen Starlark form of the tick for validators, built on
	// first use so that a tick with many models converts its input once, not per model.
	validatorContext struct {
		err    error
		fields starlark.StringDict
		once   sync.Once
	}
}

// starlarkFields returns the tick's fields as frozen Starlark values: scope, scope_key,
// slot_ts (Unix seconds), subject, symbol and, with input, the model input.
func (t *Tick) starlarkFields(withInput bool) (starlark.StringDict, error) {
	scope := t.Scope
	if scope == nil {
		scope = map[string]any{}
	}
	sv, err := script.ToValue(scope)
	if err != nil {
		return nil, fmt.Errorf("converting the scope: %w", err)
	}
	fields := starlark.StringDict{
		"scope":     sv,
		"scope_key": starlark.String(t.ScopeKey),
		"slot_ts":   starlark.MakeInt64(t.Slot.Unix()),
		"subject":   starlark.String(t.Subject),
		"symbol":    starlark.String(t.Symbol),
	}
	if withInput {
		input := t.Input
		if input == nil {
			input = map[string]any{}
		}
		iv, err := script.ToValue(input)
		if err != nil {
			return nil, fmt.Errorf("converting the model input: %w", err)
		}
		fields["input"] = iv
	}
	fields.Freeze() // shared by every model's validation; scripts may read, not change
	return fields, nil
}

// contextDict builds the context argument from frozen fields plus extra entries.
func contextDict(fields starlark.StringDict, extra map[string]starlark.Value) *starlark.Dict {
	d := starlark.NewDict(len(fields) + len(extra))
	for _, k := range fields.Keys() { // sorted, so scripts iterate deterministically
		_ = d.SetKey(starlark.String(k), fields[k]) // cannot fail: unfrozen dict, string key
	}
	for k, v := range extra {
		_ = d.SetKey(starlark.String(k), v)
	}
	return d
}

// InputBuilder is an INFERENCE_INPUT_BUILDER: it turns the tick's feed window (the
// subject's newest records, oldest first) into the model input, the one JSON object sent
// with feed_update and stored in inputs. An error means the builder itself is broken
// (a script raised or returned the wrong shape): the tick cannot be run, so the job
// fails and River retries it. The records' Values are shared with the ticks before and
// after: a builder reads them and never changes them.
type InputBuilder interface {
	Build(ctx context.Context, records []feed.Record, tick *Tick) (map[string]any, error)
}

// NormalizerInput is the built-in input builder: the configured feed normalizer
// (feed.normalizer, candle or tick).
type NormalizerInput struct {
	Normalizer feed.Normalizer
}

// Build implements [InputBuilder].
func (n NormalizerInput) Build(_ context.Context, records []feed.Record, tick *Tick) (map[string]any, error) {
	return n.Normalizer.Normalize(tick.Subject, records, feed.SymbolMap{tick.Subject: tick.Symbol}), nil
}

// StarlarkInput runs an operator's INFERENCE_INPUT_BUILDER script
// `(records) -> dict` or `(records, context) -> dict`.
//
// records is the window, oldest first, as dicts {source, subject, kind, granularity,
// ts_event (Unix seconds), ts_event_ms, values: {close: …}}, the shape ground-truth
// resolvers see; context is {scope, scope_key, slot_ts, subject, symbol}. The returned
// dict is the model input as is: it must hold only JSON values and finite numbers.
type StarlarkInput struct {
	fn          *script.Func
	withContext bool
}

// NewStarlarkInput checks that fn accepts (records) or (records, context).
func NewStarlarkInput(fn *script.Func) (*StarlarkInput, error) {
	withContext, err := contextArity(fn, "records")
	if err != nil {
		return nil, err
	}
	return &StarlarkInput{fn: fn, withContext: withContext}, nil
}

// Build implements [InputBuilder].
func (s *StarlarkInput) Build(ctx context.Context, records []feed.Record, tick *Tick) (map[string]any, error) {
	list := make([]any, len(records))
	for i, r := range records {
		list[i] = map[string]any{
			"granularity": r.Granularity,
			"kind":        r.Kind,
			"source":      r.Source,
			"subject":     r.Subject,
			"ts_event":    r.TsEvent.Unix(),
			"ts_event_ms": r.TsEvent.UnixMilli(),
			"values":      r.Values,
		}
	}
	rv, err := script.ToValue(list)
	if err != nil {
		return nil, fmt.Errorf("building the model input: converting records: %w", err)
	}
	args := []starlark.Value{rv}
	if s.withContext {
		fields, err := tick.starlarkFields(false)
		if err != nil {
			return nil, fmt.Errorf("building the model input: %w", err)
		}
		args = append(args, contextDict(fields, nil))
	}
	res, err := s.fn.CallValues(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("building the model input: %w", err)
	}
	if _, ok := res.(*starlark.Dict); !ok {
		return nil, fmt.Errorf("building the model input: %s returned %s, want a dict", s.fn, res.Type())
	}
	out, err := script.FromValue(res)
	if err != nil {
		return nil, fmt.Errorf("building the model input: %s returned a dict that cannot be sent: %w", s.fn, err)
	}
	input, _ := out.(map[string]any) // a dict always converts to a map
	if err := variant.CheckFinite(input); err != nil {
		return nil, fmt.Errorf("building the model input: %s returned %w", s.fn, err)
	}
	return input, nil
}

// NewInputBuilder builds the INFERENCE_INPUT_BUILDER named by ref: "" or "default" for the
// configured normalizer, "candle" or "tick" for that normalizer, or
// `file.star:function` for a [StarlarkInput].
func NewInputBuilder(ref, normalizer string, opts script.Options) (InputBuilder, error) {
	switch {
	case ref == "" || ref == "default":
		n, err := feed.NormalizerByName(normalizer)
		if err != nil {
			return nil, fmt.Errorf("feed.normalizer: %w", err)
		}
		return NormalizerInput{Normalizer: n}, nil
	case ref == feed.NormalizerCandle || ref == feed.NormalizerTick:
		n, err := feed.NormalizerByName(ref)
		if err != nil {
			return nil, fmt.Errorf("INFERENCE_INPUT_BUILDER: %w", err)
		}
		return NormalizerInput{Normalizer: n}, nil
	case script.IsRef(ref):
		fn, err := loadCallable(ref, opts)
		if err != nil {
			return nil, fmt.Errorf("INFERENCE_INPUT_BUILDER: %w", err)
		}
		b, err := NewStarlarkInput(fn)
		if err != nil {
			return nil, fmt.Errorf("INFERENCE_INPUT_BUILDER: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("INFERENCE_INPUT_BUILDER: unknown input builder %q (want default, candle, tick or path/to/file.star:function)", ref)
}

// Validator is an INFERENCE_OUTPUT_VALIDATOR: it accepts one model's answer (an object)
// or rejects it with an error saying why; the prediction is then FAILED with that
// reason and the raw answer kept. A broken validator (a script that raises) rejects
// too, with its error as the reason, so one bad answer never stops the tick.
type Validator interface {
	Validate(ctx context.Context, output map[string]any, modelID string, tick *Tick) error
}

// StarlarkValidator runs an operator's INFERENCE_OUTPUT_VALIDATOR script
// `(output) -> verdict` or `(output, context) -> verdict`.
//
// output is the model's answer (non-object answers arrive wrapped as {"result": x});
// context is {input, model_id, scope, scope_key, slot_ts, subject, symbol}, read-only.
// The verdict accepts with None, True or "" and rejects with False or a non-empty
// string, which becomes the reason. The script replaces the output_schema check.
type StarlarkValidator struct {
	fn          *script.Func
	withContext bool
}

// NewStarlarkValidator checks that fn accepts (output) or (output, context).
func NewStarlarkValidator(fn *script.Func) (*StarlarkValidator, error) {
	withContext, err := contextArity(fn, "output")
	if err != nil {
		return nil, err
	}
	return &StarlarkValidator{fn: fn, withContext: withContext}, nil
}

// Validate implements [Validator].
func (s *StarlarkValidator) Validate(ctx context.Context, output map[string]any, modelID string, tick *Tick) error {
	ov, err := script.ToValue(output)
	if err != nil {
		return fmt.Errorf("converting the output for %s: %w", s.fn, err)
	}
	args := []starlark.Value{ov}
	if s.withContext {
		tc := &tick.validatorContext
		tc.once.Do(func() { tc.fields, tc.err = tick.starlarkFields(true) })
		if tc.err != nil {
			return fmt.Errorf("validator context: %w", tc.err)
		}
		args = append(args, contextDict(tc.fields, map[string]starlark.Value{"model_id": starlark.String(modelID)}))
	}
	res, err := s.fn.CallValues(ctx, args...)
	if err != nil {
		return fmt.Errorf("validator error: %w", err)
	}
	switch v := res.(type) {
	case starlark.NoneType:
		return nil
	case starlark.Bool:
		if v {
			return nil
		}
		return fmt.Errorf("rejected by %s", s.fn)
	case starlark.String:
		if reason := strings.TrimSpace(string(v)); reason != "" {
			return errors.New(reason)
		}
		return nil
	}
	return fmt.Errorf("validator error: %s returned %s, want None, True, False or a reason string", s.fn, res.Type())
}

// Validate implements [Validator] with the output_schema.
func (v *SchemaValidator) Validate(_ context.Context, output map[string]any, _ string, _ *Tick) error {
	return v.Check(output)
}

// NewValidator builds the INFERENCE_OUTPUT_VALIDATOR named by ref: "" or "default" for the
// JSON Schema output_schema, or `file.star:function` for a [StarlarkValidator].
func NewValidator(ref string, schema map[string]any, opts script.Options) (Validator, error) {
	switch {
	case ref == "" || ref == "default":
		return NewSchemaValidator(schema)
	case script.IsRef(ref):
		fn, err := loadCallable(ref, opts)
		if err != nil {
			return nil, fmt.Errorf("INFERENCE_OUTPUT_VALIDATOR: %w", err)
		}
		v, err := NewStarlarkValidator(fn)
		if err != nil {
			return nil, fmt.Errorf("INFERENCE_OUTPUT_VALIDATOR: %w", err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("INFERENCE_OUTPUT_VALIDATOR: unknown validator %q (want default or path/to/file.star:function)", ref)
}

func loadCallable(ref string, opts script.Options) (*script.Func, error) {
	parsed, err := script.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return script.LoadRef(parsed, opts)
}

// contextArity reports whether fn takes the optional context argument: it must accept
// (first) or (first, context); when it accepts both, it gets the context.
func contextArity(fn *script.Func, first string) (bool, error) {
	if fn.CheckArity(2) == nil {
		return true, nil
	}
	if err := fn.CheckArity(1); err != nil {
		return false, fmt.Errorf("%w (want (%s) or (%s, context))", err, first, first)
	}
	return false, nil
}
