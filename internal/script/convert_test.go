package script

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"go.starlark.net/starlark"
)

type namedFloat float64

func TestToValueRoundTrip(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   any
		want any
	}{
		{name: "Bool", in: true, want: true},
		{name: "Float32", in: float32(1.5), want: 1.5},
		{name: "Float64", in: 2.25, want: 2.25},
		{name: "Int", in: 3, want: int64(3)},
		{name: "Int8", in: int8(-4), want: int64(-4)},
		{name: "JSONNumberFloat", in: json.Number("1.25"), want: 1.25},
		{name: "JSONNumberInt", in: json.Number("42"), want: int64(42)},
		{name: "ListOfAny", in: []any{1, "a", nil, 2.5}, want: []any{int64(1), "a", nil, 2.5}},
		{name: "ListOfFloat", in: []float64{1, 2}, want: []any{1.0, 2.0}},
		{name: "ListOfMaps", in: []map[string]any{{"a": 1}}, want: []any{map[string]any{"a": int64(1)}}},
		{name: "ListOfStrings", in: []string{"x", "y"}, want: []any{"x", "y"}},
		{name: "MapOfFloat", in: map[string]float64{"close": 1}, want: map[string]any{"close": 1.0}},
		{name: "MapOfInt", in: map[string]int{"n": 1}, want: map[string]any{"n": int64(1)}},
		{name: "NamedFloat", in: namedFloat(0.5), want: 0.5},
		{name: "Nested", in: map[string]any{"a": map[string]any{"b": []any{true}}}, want: map[string]any{"a": map[string]any{"b": []any{true}}}},
		{name: "Nil", in: nil, want: nil},
		{name: "NilSlice", in: []string(nil), want: []any{}},
		{name: "String", in: "s", want: "s"},
		{name: "Uint64", in: uint64(math.MaxUint32) + 1, want: int64(math.MaxUint32) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := ToValue(tt.in)
			require.NoError(t, err)
			got, err := FromValue(v)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestToValueErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      any
		wantErr string
	}{
		{name: "BadJSONNumber", in: json.Number("x"), wantErr: "invalid json.Number \"x\""},
		{name: "Chan", in: make(chan int), wantErr: "unsupported Go type chan int"},
		{name: "IntKeys", in: map[int]any{1: 2}, wantErr: "unsupported map key type int (want string)"},
		{name: "NestedFunc", in: map[string]any{"a": []any{0, func() {}}}, wantErr: "at [\"a\"][1]: unsupported Go type func()"},
		{name: "Struct", in: struct{ A int }{1}, wantErr: "unsupported Go type struct { A int }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ToValue(tt.in)
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestFromValueErrors(t *testing.T) {
	t.Parallel()

	intKeyDict := starlark.NewDict(1)
	require.NoError(t, intKeyDict.SetKey(starlark.MakeInt(1), starlark.None))
	nested := starlark.NewDict(1)
	require.NoError(t, nested.SetKey(starlark.String("xs"), starlark.NewList([]starlark.Value{starlark.NewSet(0)})))
	huge := starlark.MakeInt64(math.MaxInt64).Add(starlark.MakeInt(1))

	tests := []struct {
		name    string
		in      starlark.Value
		wantErr string
	}{
		{name: "Bytes", in: starlark.Bytes("x"), wantErr: "unsupported Starlark type bytes"},
		{name: "HugeInt", in: huge, wantErr: "integer 9223372036854775808 does not fit in int64"},
		{name: "IntKey", in: intKeyDict, wantErr: "dict key 1 is a int, want string"},
		{name: "NestedSet", in: nested, wantErr: "at [\"xs\"][0]: unsupported Starlark type set"},
		{name: "Nil", in: nil, wantErr: "nil starlark.Value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := FromValue(tt.in)
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestFromValueTuple(t *testing.T) {
	t.Parallel()

	got, err := FromValue(starlark.Tuple{starlark.MakeInt(1), starlark.String("a")})
	require.NoError(t, err)
	require.Equal(t, []any{int64(1), "a"}, got)
}
