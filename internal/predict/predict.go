// Package predict holds the pure logic of a predict tick: building a scope and the typed
// call arguments from a schedule, building the model input and validating model outputs
// (the INFERENCE_INPUT_BUILDER and INFERENCE_OUTPUT_VALIDATOR callables, built in or
// Starlark), and turning each model's answer into a prediction status with its reason.
// It touches no database; the predict job glues it to the model runner and the queries.
package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// Statuses of a stored prediction.
const (
	StatusAbsent  = "ABSENT"
	StatusFailed  = "FAILED"
	StatusPending = "PENDING"
)

// FeedDefaults fill the feed dimensions a scope does not set, from the configured feed.
type FeedDefaults struct {
	Granularity string
	Kind        string
	Source      string
	Subject     string
}

// BuildScope returns the scope of a schedule as the Python engine built it: the config's
// scope defaults, overlaid by the schedule's template, plus resolve_horizon_seconds, with
// the feed dimensions filled in where missing. scope_key is not part of it (it is stored
// in its own column).
func BuildScope(defaults, template map[string]any, horizon time.Duration, feed FeedDefaults) map[string]any {
	scope := make(map[string]any, len(defaults)+len(template)+5)
	maps.Copy(scope, defaults)
	maps.Copy(scope, template)
	delete(scope, "scope_key")
	scope["resolve_horizon_seconds"] = int64(horizon / time.Second)
	for key, value := range map[string]string{
		"granularity": feed.Granularity, "kind": feed.Kind, "source": feed.Source, "subject": feed.Subject,
	} {
		if s, ok := scope[key].(string); !ok || s == "" {
			scope[key] = value
		}
	}
	return scope
}

// Arguments reads the call method's positional arguments from the scope by name and casts
// them to their declared types. A missing argument is the type's zero value, as in the
// Python engine; a value that cannot be cast is an error that names the argument.
func Arguments(args []config.CallArg, scope map[string]any) ([]any, error) {
	out := make([]any, len(args))
	for i, arg := range args {
		value, present := scope[arg.Name]
		cast, err := castArg(arg.Type, value, present)
		if err != nil {
			return nil, fmt.Errorf("argument %s (%s): %w", arg.Name, arg.Type, err)
		}
		out[i] = cast
	}
	return out, nil
}

func castArg(typ string, value any, present bool) (any, error) {
	switch typ {
	case "STRING":
		if !present || value == nil {
			return "", nil
		}
		if s, ok := value.(string); ok {
			return s, nil
		}
		return fmt.Sprint(value), nil
	case "INT":
		if !present || value == nil {
			return int64(0), nil
		}
		switch v := value.(type) {
		case int:
			return int64(v), nil
		case int64:
			return v, nil
		case float64:
			if v != math.Trunc(v) {
				return nil, fmt.Errorf("%v is not a whole number", v)
			}
			return int64(v), nil
		case string:
			return strconv.ParseInt(v, 10, 64)
		}
	case "DOUBLE", "FLOAT":
		if !present || value == nil {
			return 0.0, nil
		}
		switch v := value.(type) {
		case int:
			return float64(v), nil
		case int64:
			return float64(v), nil
		case float64:
			return v, nil
		case string:
			return strconv.ParseFloat(v, 64)
		}
	case "JSON":
		data, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		return json.RawMessage(data), nil
	default:
		return nil, fmt.Errorf("unknown type %q", typ)
	}
	return nil, fmt.Errorf("cannot use %T %v", value, value)
}

// SchemaValidator validates outputs against the JSON Schema of crunch_config.yaml's
// output_schema.
type SchemaValidator struct {
	schema *jsonschema.Schema
}

// NewSchemaValidator compiles the schema; an empty schema accepts every object.
func NewSchemaValidator(schema map[string]any) (*SchemaValidator, error) {
	if len(schema) == 0 {
		return &SchemaValidator{}, nil
	}
	// Round-trip through JSON so the compiler sees plain JSON types (YAML decoding gives
	// ints where JSON Schema wants numbers, which both accept, but maps must be
	// map[string]any all the way down).
	data, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("output_schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
	if err != nil {
		return nil, fmt.Errorf("output_schema: %w", err)
	}
	compiler := jsonschema.NewCompiler()
	if err := compiler.AddResource("output_schema.json", doc); err != nil {
		return nil, fmt.Errorf("output_schema: %w", err)
	}
	compiled, err := compiler.Compile("output_schema.json")
	if err != nil {
		return nil, fmt.Errorf("output_schema: %w", err)
	}
	return &SchemaValidator{schema: compiled}, nil
}

// Check validates one output against the schema.
func (v *SchemaValidator) Check(output map[string]any) error {
	if v.schema == nil {
		return nil
	}
	var doc any = output
	if !jsonShaped(output) {
		// Anything else takes a round trip through encoding/json.
		data, err := json.Marshal(output)
		if err != nil {
			return err
		}
		if doc, err = jsonschema.UnmarshalJSON(strings.NewReader(string(data))); err != nil {
			return err
		}
	}
	if err := v.schema.Validate(doc); err != nil {
		var verr *jsonschema.ValidationError
		if errors.As(err, &verr) {
			return errors.New(flatten(verr))
		}
		return err
	}
	return nil
}

// jsonShaped reports whether v holds only what a JSON decoder yields (maps, slices, strings,
// float64 or json.Number, booleans, nil). The validator takes such a value as it is (it
// reads a float64 through its shortest decimal, as it would the JSON text), which spares
// a tick an encoding and a parse per model output.
func jsonShaped(v any) bool {
	switch v := v.(type) {
	case nil, bool, string, float64, json.Number:
		return true
	case map[string]any:
		for _, e := range v {
			if !jsonShaped(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range v {
			if !jsonShaped(e) {
				return false
			}
		}
		return true
	}
	return false
}

var englishPrinter = message.NewPrinter(language.English)

// flatten turns the validator's tree of causes into one readable line.
func flatten(err *jsonschema.ValidationError) string {
	var parts []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			parts = append(parts, fmt.Sprintf("%s: %s", loc, e.ErrorKind.LocalizedString(englishPrinter)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(err)
	return strings.Join(parts, "; ")
}

// Outcome is one model's prediction for a tick, ready to store.
type Outcome struct {
	ExecTimeMs float64
	ModelID    string
	// Output is what is stored as inference_output: the model's answer, or, when it was
	// rejected, {"_validation_error": …, "raw_output": …} so the raw answer is kept.
	Output map[string]any
	Reason string
	Status string
}

// Classify maps a runner result to a prediction: a valid, finite object answer is
// PENDING; a failed or timed-out call, a non-finite number anywhere, or an answer that
// the validator rejects (or fails on) is FAILED with its reason and the raw answer kept.
// An answer that is not an object is wrapped as {"result": x} first, as the Python
// engine did.
func Classify(ctx context.Context, result modelrunner.Result, validator Validator, tick *Tick) Outcome {
	out := Outcome{
		ExecTimeMs: float64(result.ExecTime) / float64(time.Millisecond),
		ModelID:    result.Model.ID,
	}
	if result.Status != modelrunner.StatusSuccess {
		out.Status = StatusFailed
		out.Reason = fmt.Sprintf("%s: %v", strings.ToLower(string(result.Status)), result.Err)
		out.Output = map[string]any{}
		return out
	}
	output, ok := result.Value.(map[string]any)
	if !ok {
		output = map[string]any{"result": result.Value}
	}
	if err := variant.CheckFinite(result.Value); err != nil {
		return rejected(out, output, fmt.Sprintf("non-finite output: %v", err))
	}
	if validator != nil {
		if err := validator.Validate(ctx, output, result.Model.ID, tick); err != nil {
			return rejected(out, output, "output fails validation: "+err.Error())
		}
	}
	out.Status = StatusPending
	out.Output = output
	return out
}

func rejected(out Outcome, raw map[string]any, reason string) Outcome {
	out.Status = StatusFailed
	out.Reason = reason
	out.Output = map[string]any{"_validation_error": reason, "raw_output": jsonSafe(raw)}
	return out
}

// jsonSafe replaces non-finite floats (which JSON cannot hold) with their names, so a
// rejected answer can still be stored for the participant to see.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
		return x
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonSafe(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = jsonSafe(e)
		}
		return s
	}
	return v
}

var unsafeID = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// PredictionID is the Python engine's readable id: PRE_ (or ABS_ for an absent model),
// the model, the scope key with unsafe characters replaced, and the slot in UTC with
// milliseconds. It is deterministic per (model, scope, slot), so a retried tick produces
// the same ids.
func PredictionID(status, modelID, scopeKey string, slot time.Time) string {
	prefix := "PRE_"
	if status == StatusAbsent {
		prefix = "ABS_"
	}
	return prefix + modelID + "_" + safeID(scopeKey) + "_" + slot.UTC().Format("20060102_150405.000")
}

// safeID replaces the characters an id may not hold with "_". Scope keys rarely hold
// any, and a tick names a prediction per model, so the regexp only runs when needed.
func safeID(s string) string {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return unsafeID.ReplaceAllString(s, "_")
		}
	}
	return s
}

// InputID names the input of a tick for one schedule and slot.
func InputID(scheduleID int64, slot time.Time) string {
	return fmt.Sprintf("INP_%d_%s", scheduleID, slot.UTC().Format("20060102_150405.000"))
}
