package variant

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func TestEncode(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		in       any
		wantType mrpb.VariantType
		wantHex  string
	}{
		{name: "BoolFalse", in: false, wantType: mrpb.VariantType_INT, wantHex: "00 00 00 00 00 00 00 00"},
		{name: "BoolTrue", in: true, wantType: mrpb.VariantType_INT, wantHex: "01 00 00 00 00 00 00 00"},
		{name: "DoubleHalf", in: 0.5, wantType: mrpb.VariantType_DOUBLE, wantHex: "00 00 00 00 00 00 e0 3f"},
		{name: "DoubleNaN", in: math.Float64frombits(0x7ff8000000000000), // Python's NaN bits
			wantType: mrpb.VariantType_DOUBLE, wantHex: "00 00 00 00 00 00 f8 7f"},
		{name: "DoubleNegOne", in: float32(-1), wantType: mrpb.VariantType_DOUBLE, wantHex: "00 00 00 00 00 00 f0 bf"},
		{name: "Int60", in: 60, wantType: mrpb.VariantType_INT, wantHex: "3c 00 00 00 00 00 00 00"},
		{name: "IntMinusOne", in: int64(-1), wantType: mrpb.VariantType_INT, wantHex: "ff ff ff ff ff ff ff ff"},
		{name: "IntUint32", in: uint32(300), wantType: mrpb.VariantType_INT, wantHex: "2c 01 00 00 00 00 00 00"},
		{name: "JSONMap", in: map[string]any{"value": 1.5}, wantType: mrpb.VariantType_JSON, wantHex: hex.EncodeToString([]byte(`{"value":1.5}`))},
		{name: "JSONRaw", in: json.RawMessage(`{"value": NaN}`), wantType: mrpb.VariantType_JSON, wantHex: hex.EncodeToString([]byte(`{"value": NaN}`))},
		{name: "JSONSlice", in: []int{1, 2}, wantType: mrpb.VariantType_JSON, wantHex: hex.EncodeToString([]byte(`[1,2]`))},
		{name: "None", in: nil, wantType: mrpb.VariantType_NONE, wantHex: ""},
		{name: "String", in: "BTCUSDT", wantType: mrpb.VariantType_STRING, wantHex: "42 54 43 55 53 44 54"},
		{name: "StringUTF8", in: "é", wantType: mrpb.VariantType_STRING, wantHex: "c3 a9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := Encode(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.wantType, v.GetType())
			require.Equal(t, mustHex(t, tt.wantHex), append([]byte{}, v.GetValue()...))
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()

	for name, in := range map[string]any{
		"Bytes":       []byte("x"),
		"JSONNaN":     map[string]any{"v": math.NaN()},
		"Uint64Large": uint64(math.MaxInt64) + 1,
		"Unencodable": make(chan int),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Encode(in)
			require.Error(t, err)
		})
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		typ     mrpb.VariantType
		hex     string
		raw     string // used instead of hex when set
		want    any
		wantNaN bool
	}{
		{name: "DoubleHalf", typ: mrpb.VariantType_DOUBLE, hex: "00 00 00 00 00 00 e0 3f", want: 0.5},
		{name: "DoubleInf", typ: mrpb.VariantType_DOUBLE, hex: "00 00 00 00 00 00 f0 7f", want: math.Inf(1)},
		{name: "DoubleNaN", typ: mrpb.VariantType_DOUBLE, hex: "00 00 00 00 00 00 f8 7f", wantNaN: true},
		{name: "Int60", typ: mrpb.VariantType_INT, hex: "3c 00 00 00 00 00 00 00", want: int64(60)},
		{name: "IntMin", typ: mrpb.VariantType_INT, hex: "00 00 00 00 00 00 00 80", want: int64(math.MinInt64)},
		{name: "IntMinusTwo", typ: mrpb.VariantType_INT, hex: "fe ff ff ff ff ff ff ff", want: int64(-2)},
		{name: "JSONBigNumber", typ: mrpb.VariantType_JSON, raw: `[1e400, -1e400]`, want: []any{math.Inf(1), math.Inf(-1)}},
		{name: "JSONDict", typ: mrpb.VariantType_JSON, raw: `{"value": 0.25, "tags": ["a"], "ok": true, "n": null}`, want: map[string]any{"value": 0.25, "tags": []any{"a"}, "ok": true, "n": nil}},
		{name: "JSONInfinity", typ: mrpb.VariantType_JSON, raw: `{"value": Infinity, "low": -Infinity}`, want: map[string]any{"value": math.Inf(1), "low": math.Inf(-1)}},
		{name: "JSONNaNNested", typ: mrpb.VariantType_JSON, raw: `{"a": [1, {"b": NaN}]}`},
		{name: "JSONScalar", typ: mrpb.VariantType_JSON, raw: `3`, want: 3.0},
		{name: "NoneEmpty", typ: mrpb.VariantType_NONE, hex: "", want: nil},
		{name: "String", typ: mrpb.VariantType_STRING, raw: "héllo", want: "héllo"},
		{name: "StringEmpty", typ: mrpb.VariantType_STRING, raw: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			value := []byte(tt.raw)
			if tt.raw == "" {
				value = mustHex(t, tt.hex)
			}
			got, err := Decode(&mrpb.Variant{Type: tt.typ, Value: value})
			require.NoError(t, err)
			switch {
			case tt.wantNaN:
				require.True(t, math.IsNaN(got.(float64)))
			case tt.name == "JSONNaNNested":
				inner := got.(map[string]any)["a"].([]any)[1].(map[string]any)["b"].(float64)
				require.True(t, math.IsNaN(inner))
				require.EqualError(t, CheckFinite(got), "non-finite number NaN at $.a[1].b")
			default:
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func TestDecodeNilVariant(t *testing.T) {
	t.Parallel()

	got, err := Decode(nil)
	require.NoError(t, err)
	require.Nil(t, got)
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		typ     mrpb.VariantType
		value   []byte
		wantErr string
	}{
		{name: "Arrow", typ: mrpb.VariantType_ARROW, value: []byte{1}, wantErr: "decoding ARROW variant: unsupported variant type"},
		{name: "DoubleShort", typ: mrpb.VariantType_DOUBLE, value: []byte{1, 2, 3}, wantErr: "decoding DOUBLE variant: want 8 bytes, got 3"},
		{name: "IntLong", typ: mrpb.VariantType_INT, value: make([]byte, 9), wantErr: "decoding INT variant: want 8 bytes, got 9"},
		{name: "JSONGarbage", typ: mrpb.VariantType_JSON, value: []byte(`{"value": nan}`), wantErr: "decoding JSON variant: invalid JSON at offset 10: unexpected character 'n'"},
		{name: "JSONTrailing", typ: mrpb.VariantType_JSON, value: []byte(`NaN x`), wantErr: "decoding JSON variant: invalid JSON at offset 4: unexpected data after top-level value"},
		{name: "Parquet", typ: mrpb.VariantType_PARQUET, value: []byte("PAR1"), wantErr: "decoding PARQUET variant: unsupported variant type"},
		{name: "StringInvalidUTF8", typ: mrpb.VariantType_STRING, value: []byte{0xff}, wantErr: "decoding STRING variant: invalid UTF-8"},
		{name: "UnknownTag", typ: mrpb.VariantType(42), wantErr: "decoding variant: unknown type tag 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode(&mrpb.Variant{Type: tt.typ, Value: tt.value})
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestUnsupportedIsSentinel(t *testing.T) {
	t.Parallel()

	_, err := Decode(&mrpb.Variant{Type: mrpb.VariantType_PARQUET})
	require.ErrorIs(t, err, ErrUnsupported)
}

func TestArgsRoundTrip(t *testing.T) {
	t.Parallel()

	args, err := Args("BTCUSDT", 60, 15.5, nil, map[string]any{"x": 1.0})
	require.NoError(t, err)
	require.Len(t, args, 5)
	require.Equal(t, uint32(1), args[0].GetPosition())
	require.Equal(t, uint32(5), args[4].GetPosition())

	// The server must sort by position whatever the wire order.
	args[0], args[4] = args[4], args[0]
	got, err := DecodeArgs(args)
	require.NoError(t, err)
	require.Equal(t, []any{"BTCUSDT", int64(60), 15.5, nil, map[string]any{"x": 1.0}}, got)

	kwargs, err := Kwargs(map[string]any{"b": "x", "a": 2})
	require.NoError(t, err)
	require.Equal(t, "a", kwargs[0].GetKeyword())
	kw, err := DecodeKwargs(kwargs)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": int64(2), "b": "x"}, kw)
}

func TestCheckFinite(t *testing.T) {
	t.Parallel()

	require.NoError(t, CheckFinite(map[string]any{"value": 1.0, "list": []any{1.0, "x", nil}}))
	require.EqualError(t, CheckFinite(math.Inf(-1)), "non-finite number -Inf at $")
	require.EqualError(t, CheckFinite(map[string]any{"b": 1.0, "a": []any{math.Inf(1)}}), "non-finite number +Inf at $.a[0]")
}

func TestParseJSONSlowPathMatchesStdlib(t *testing.T) {
	t.Parallel()

	// The slow parser must agree with encoding/json on standard input, so
	// drive it directly on documents the fast path would normally take.
	for _, doc := range []string{
		`{"a":[1,2.5,-0.5e3,true,false,null,"x\u00e9\n"],"b":{}}`,
		` [ ] `,
		`"\ud83d\ude00"`,
		`"\ud800"`,
		`-0`,
		`1E+2`,
	} {
		var want any
		require.NoError(t, json.Unmarshal([]byte(doc), &want), doc)
		p := jsonParser{data: []byte(doc)}
		p.skipSpace()
		got, err := p.value(0)
		require.NoError(t, err, doc)
		require.Equal(t, want, got, doc)
	}
}

func TestParseJSONDepthLimit(t *testing.T) {
	t.Parallel()

	deep := strings.Repeat("[", maxJSONDepth+2) + "NaN" + strings.Repeat("]", maxJSONDepth+2)
	_, err := ParseJSON([]byte(deep))
	require.ErrorContains(t, err, "nesting too deep")
}

func FuzzDecode(f *testing.F) {
	f.Add(int32(mrpb.VariantType_JSON), []byte(`{"value": NaN, "x": [Infinity, -Infinity, 1e999]}`))
	f.Add(int32(mrpb.VariantType_JSON), []byte(`{"a":"\u00e9"}`))
	f.Add(int32(mrpb.VariantType_DOUBLE), []byte{0, 0, 0, 0, 0, 0, 0xe0, 0x3f})
	f.Add(int32(mrpb.VariantType_INT), []byte{0x3c, 0, 0, 0, 0, 0, 0, 0})
	f.Add(int32(mrpb.VariantType_STRING), []byte("BTC"))
	f.Add(int32(mrpb.VariantType_PARQUET), []byte("PAR1"))
	f.Add(int32(99), []byte{})

	f.Fuzz(func(t *testing.T, typ int32, value []byte) {
		got, err := Decode(&mrpb.Variant{Type: mrpb.VariantType(typ), Value: value})
		if err != nil {
			return
		}
		switch mrpb.VariantType(typ) {
		case mrpb.VariantType_DOUBLE, mrpb.VariantType_INT, mrpb.VariantType_STRING:
			// Re-encoding a decoded scalar must give back the same bytes.
			v, err := Encode(got)
			if err != nil {
				t.Fatalf("re-encoding %#v: %v", got, err)
			}
			if string(v.GetValue()) != string(value) {
				t.Fatalf("round trip changed bytes: %x → %x", value, v.GetValue())
			}
		case mrpb.VariantType_JSON:
			// Whatever the stdlib accepts, we must decode identically.
			var want any
			if json.Unmarshal(value, &want) == nil && !reflect.DeepEqual(want, got) {
				t.Fatalf("decoded %#v, encoding/json says %#v", got, want)
			}
		}
	})
}

func FuzzParseJSONSlowPath(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,-0.5e3,true,false,null,"x\u00e9\n"],"b":{}}`))
	f.Add([]byte(`[NaN, Infinity, -Infinity]`))
	f.Add([]byte(`"\ud800"`))

	f.Fuzz(func(t *testing.T, data []byte) {
		p := jsonParser{data: data}
		p.skipSpace()
		got, err := p.value(0)
		if err == nil {
			p.skipSpace()
			if p.pos != len(data) {
				err = p.errorf("trailing")
			}
		}
		var want any
		stdErr := json.Unmarshal(data, &want)
		if stdErr == nil {
			if err != nil {
				t.Fatalf("slow path rejected valid JSON %q: %v", data, err)
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("slow path decoded %#v, encoding/json says %#v", got, want)
			}
		}
	})
}

// requireFlatObjectLikeStdlib checks that whatever parseFlatObject takes,
// json.Unmarshal takes too and decodes the same.
func requireFlatObjectLikeStdlib(t *testing.T, doc []byte) bool {
	t.Helper()
	got, ok := parseFlatObject(doc)
	if !ok {
		return false
	}
	var want any
	require.NoError(t, json.Unmarshal(doc, &want), "%q", doc)
	require.Equal(t, want, any(got), "%q", doc)
	return true
}

func TestParseFlatObject(t *testing.T) {
	t.Parallel()

	for doc, taken := range map[string]bool{
		`{"value": 0.5}`:                      true,
		` { "a" : -0 , "b":1E+2, "a": 3 } `:   true,
		`{}`:                                  true,
		`{"s": "x y", "t": true, "f": false}`: true,
		`{"n": null}`:                         true,
		`{"value": NaN}`:                      false,
		`{"value": 1e999}`:                    false,
		`{"value": 01}`:                       false,
		`{"value": 1.}`:                       false,
		`{"value": truex}`:                    false,
		`{"value": [1]}`:                      false,
		`{"value": {}}`:                       false,
		`{"a\u00e9": 1}`:                      false,
		`{"é": 1}`:                            false,
		`{"a": 1,}`:                           false,
		`{"a": 1} x`:                          false,
		`{"a" 1}`:                             false,
		`{"a": 1`:                             false,
		`[1]`:                                 false,
		``:                                    false,
	} {
		require.Equal(t, taken, requireFlatObjectLikeStdlib(t, []byte(doc)), doc)
	}
}

func FuzzParseFlatObject(f *testing.F) {
	f.Add([]byte(`{"value": 0.5}`))
	f.Add([]byte(` { "a" : -0 , "b":1E+2, "a": "x", "n": null, "t": true } `))
	f.Add([]byte(`{"value": 1e999}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		requireFlatObjectLikeStdlib(t, doc)
	})
}

// TestParseJSONFlatObjectAllocations is not parallel: AllocsPerRun refuses
// to run in parallel tests.
func TestParseJSONFlatObjectAllocations(t *testing.T) {
	doc := []byte(`{"value": 0.5}`)
	// The map, its table, the key and the boxed number.
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() { _, _ = ParseJSON(doc) }), 4.0)
}
