// Package variant encodes and decodes the model-runner's dynamically typed
// values (commons.Variant): a type tag plus bytes, exactly as the Python
// model-runner writes them, so Go and Python peers understand each other.
package variant

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
)

// ErrUnsupported is returned for PARQUET and ARROW values. Upstream declares
// them but we have no use for DataFrames, so a model answering with one gets a
// clear FAILED result instead of garbage.
var ErrUnsupported = errors.New("unsupported variant type")

// Encode turns a Go value into a Variant, choosing the tag the way the Python
// runner does for the equivalent Python value:
//
//   - nil → NONE
//   - float32, float64 → DOUBLE (8 bytes, little-endian IEEE-754)
//   - bool and all integer kinds → INT (8 bytes, little-endian two's complement)
//   - string → STRING (UTF-8)
//   - json.RawMessage → JSON, sent as is (so a caller can pass pre-encoded or
//     Python-style JSON containing NaN)
//   - anything else → JSON via encoding/json
//
// []byte is rejected because it is ambiguous (text? JSON? a blob?).
func Encode(v any) (*mrpb.Variant, error) {
	out := new(mrpb.Variant)
	if err := EncodeInto(out, v); err != nil {
		return nil, err
	}
	return out, nil
}

// EncodeInto is Encode into a Variant the caller provides, so that a model
// host answering call after call can reuse one.
func EncodeInto(dst *mrpb.Variant, v any) error {
	typ, value, err := encodeValue(v)
	if err != nil {
		return err
	}
	*dst = mrpb.Variant{Type: typ, Value: value}
	return nil
}

// encodeValue returns the type tag and bytes Encode puts in a Variant.
func encodeValue(v any) (mrpb.VariantType, []byte, error) {
	switch x := v.(type) {
	case nil:
		return mrpb.VariantType_NONE, nil, nil
	case float64:
		return double(x)
	case float32:
		return double(float64(x))
	case bool:
		if x {
			return integer(1)
		}
		return integer(0)
	case int:
		return integer(int64(x))
	case int8:
		return integer(int64(x))
	case int16:
		return integer(int64(x))
	case int32:
		return integer(int64(x))
	case int64:
		return integer(x)
	case uint:
		return unsigned(uint64(x))
	case uint8:
		return integer(int64(x))
	case uint16:
		return integer(int64(x))
	case uint32:
		return integer(int64(x))
	case uint64:
		return unsigned(x)
	case string:
		return mrpb.VariantType_STRING, []byte(x), nil
	case json.RawMessage:
		return mrpb.VariantType_JSON, slices.Clone(x), nil
	case []byte:
		return 0, nil, errors.New("encoding variant: []byte is ambiguous; use string or json.RawMessage")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, fmt.Errorf("encoding %T as JSON variant: %w", v, err)
	}
	return mrpb.VariantType_JSON, b, nil
}

func double(f float64) (mrpb.VariantType, []byte, error) {
	return mrpb.VariantType_DOUBLE, binary.LittleEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(f)), nil
}

func integer(i int64) (mrpb.VariantType, []byte, error) {
	return mrpb.VariantType_INT, binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(i)), nil
}

func unsigned(u uint64) (mrpb.VariantType, []byte, error) {
	if u > math.MaxInt64 {
		return 0, nil, fmt.Errorf("encoding variant: %d does not fit in a signed 8-byte INT", u)
	}
	return integer(int64(u))
}

// Decode turns a Variant into a Go value: nil (NONE or a nil Variant, which
// is how the Python runner answers a method that returned None), float64
// (DOUBLE), int64 (INT), string (STRING), or for JSON the same shapes
// encoding/json produces for `any` (map[string]any, []any, float64, string,
// bool, nil). JSON written by Python may contain NaN, Infinity and -Infinity;
// those decode to the matching float64 so the caller can reject them with
// CheckFinite rather than losing the whole answer to a syntax error.
func Decode(v *mrpb.Variant) (any, error) {
	if v == nil {
		return nil, nil
	}
	b := v.GetValue()
	switch t := v.GetType(); t {
	case mrpb.VariantType_NONE:
		return nil, nil
	case mrpb.VariantType_DOUBLE:
		if len(b) != 8 {
			return nil, fmt.Errorf("decoding DOUBLE variant: want 8 bytes, got %d", len(b))
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case mrpb.VariantType_INT:
		if len(b) != 8 {
			return nil, fmt.Errorf("decoding INT variant: want 8 bytes, got %d", len(b))
		}
		return int64(binary.LittleEndian.Uint64(b)), nil
	case mrpb.VariantType_STRING:
		if !utf8.Valid(b) {
			return nil, errors.New("decoding STRING variant: invalid UTF-8")
		}
		return string(b), nil
	case mrpb.VariantType_JSON:
		x, err := ParseJSON(b)
		if err != nil {
			return nil, fmt.Errorf("decoding JSON variant: %w", err)
		}
		return x, nil
	case mrpb.VariantType_PARQUET, mrpb.VariantType_ARROW:
		return nil, fmt.Errorf("decoding %s variant: %w", t, ErrUnsupported)
	default:
		return nil, fmt.Errorf("decoding variant: unknown type tag %d", int32(t))
	}
}

// Args encodes positional arguments, numbering them from 1 as the Python
// client does (only their order matters to the server).
func Args(values ...any) ([]*mrpb.Argument, error) {
	args := make([]*mrpb.Argument, len(values))
	for i, v := range values {
		data, err := Encode(v)
		if err != nil {
			return nil, fmt.Errorf("encoding argument %d: %w", i+1, err)
		}
		args[i] = &mrpb.Argument{Position: uint32(i + 1), Data: data}
	}
	return args, nil
}

// Kwargs encodes keyword arguments in key order, so the same map always gives
// the same bytes.
func Kwargs(values map[string]any) ([]*mrpb.KwArgument, error) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	kwargs := make([]*mrpb.KwArgument, len(keys))
	for i, k := range keys {
		data, err := Encode(values[k])
		if err != nil {
			return nil, fmt.Errorf("encoding keyword argument %q: %w", k, err)
		}
		kwargs[i] = &mrpb.KwArgument{Keyword: k, Data: data}
	}
	return kwargs, nil
}

// DecodeArgs decodes positional arguments in position order, which is how the
// server side must read them regardless of the order on the wire.
func DecodeArgs(args []*mrpb.Argument) ([]any, error) {
	byPosition := func(a, b *mrpb.Argument) int {
		return int(int64(a.GetPosition()) - int64(b.GetPosition()))
	}
	sorted := args
	if !slices.IsSortedFunc(args, byPosition) { // clients send them in order
		sorted = slices.Clone(args)
		slices.SortStableFunc(sorted, byPosition)
	}
	values := make([]any, len(sorted))
	for i, a := range sorted {
		v, err := Decode(a.GetData())
		if err != nil {
			return nil, fmt.Errorf("decoding argument at position %d: %w", a.GetPosition(), err)
		}
		values[i] = v
	}
	return values, nil
}

// DecodeKwargs decodes keyword arguments into a map; a repeated keyword keeps
// the last value, like a Python dict built from the list. No keywords give a
// nil map.
func DecodeKwargs(kwargs []*mrpb.KwArgument) (map[string]any, error) {
	if len(kwargs) == 0 {
		return nil, nil
	}
	values := make(map[string]any, len(kwargs))
	for _, kw := range kwargs {
		v, err := Decode(kw.GetData())
		if err != nil {
			return nil, fmt.Errorf("decoding keyword argument %q: %w", kw.GetKeyword(), err)
		}
		values[kw.GetKeyword()] = v
	}
	return values, nil
}

// CheckFinite reports the first NaN or infinite number found in a decoded
// value, with a JSON-path-like location, so that output validation can name
// what is wrong instead of failing to store it later.
func CheckFinite(v any) error {
	return checkFinite(v, "$")
}

func checkFinite(v any, path string) error {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("non-finite number %v at %s", x, path)
		}
	case float32:
		return checkFinite(float64(x), path)
	case []any:
		for i, e := range x {
			if err := checkFinite(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := checkFinite(x[k], path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}
