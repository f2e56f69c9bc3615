package scoring

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/crunchnode/crunch-node/internal/script"
)

// number returns v as a float64 when it is a Go number. Booleans are deliberately not
// numbers (Python's bool-is-int made `success` average into a fraction), and neither
// are numeric strings.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float32:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// typeName names a dynamic value the way an operator thinks of it (Python-ish), for
// error messages; every kind of number is a "number".
func typeName(v any) string {
	switch v.(type) {
	case []float64:
		return "list"
	case map[string]float64:
		return "dict"
	case bool:
		return "bool"
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return script.TypeName(v)
}

// finiteField reads a required finite number from m, with an error that names the
// role ("prediction", "ground truth") and the field.
func finiteField(m map[string]any, role, key string) (float64, error) {
	v, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("%s has no %q field", role, key)
	}
	f, ok := number(v)
	if !ok {
		return 0, fmt.Errorf("%s %q is %s, want a number", role, key, typeName(v))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s %q is %v", role, key, f)
	}
	return f, nil
}

// checkJSONValue verifies that v can be stored in a jsonb column and read back as the
// same value: only nil, bools, strings, finite numbers, lists and string-keyed dicts.
// NaN and ±Inf are rejected because JSON cannot represent them.
func checkJSONValue(v any) error {
	switch x := v.(type) {
	case nil, bool, string:
		return nil
	case map[string]any:
		for k, e := range x {
			if err := checkJSONValue(e); err != nil {
				return fmt.Errorf("[%s]%w", strconv.Quote(k), err)
			}
		}
		return nil
	case []any:
		for i, e := range x {
			if err := checkJSONValue(e); err != nil {
				return fmt.Errorf("[%d]%w", i, err)
			}
		}
		return nil
	case []float64:
		for i, f := range x {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("[%d]%w", i, nonFinite(f))
			}
		}
		return nil
	case map[string]float64:
		for k, f := range x {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("[%s]%w", strconv.Quote(k), nonFinite(f))
			}
		}
		return nil
	}
	f, ok := number(v)
	if !ok {
		return &valueError{msg: fmt.Sprintf(": unsupported type %T", v)}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nonFinite(f)
	}
	return nil
}

// valueError lets checkJSONValue build a path such as `["a"][2]: NaN` by prefixing
// while unwinding.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

func nonFinite(f float64) error {
	return &valueError{msg: fmt.Sprintf(": %v is not a finite number", f)}
}
