package merkle

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAppendFloatMatchesPythonRepr checks float formatting against repr()
// output recorded from CPython (testdata/python_float_repr.txt): random bit
// patterns, random magnitudes around the exponent switch points, and edge
// cases.
func TestAppendFloatMatchesPythonRepr(t *testing.T) {
	t.Parallel()

	f, err := os.Open("testdata/python_float_repr.txt")
	require.NoError(t, err)
	defer f.Close()

	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		bitsHex, want, ok := strings.Cut(line, " ")
		require.True(t, ok, line)
		bits, err := strconv.ParseUint(bitsHex, 16, 64)
		require.NoError(t, err)
		got, err := appendFloat(nil, math.Float64frombits(bits))
		require.NoError(t, err)
		require.Equal(t, want, string(got), "bits %s", bitsHex)
		n++
	}
	require.NoError(t, sc.Err())
	require.Greater(t, n, 1000)
}

// TestCanonicalJSONMatchesPython compares against json.dumps(json.loads(in),
// sort_keys=True, separators=(",", ":")) run by CPython 3.11.
func TestCanonicalJSONMatchesPython(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		in   string
		want string
	}{
		{"control character", `{"nested":{"b":[{"d":1,"c":2}],"a":"\u0000"}}`, `{"nested":{"a":"\u0000","b":[{"c":2,"d":1}]}}`},
		{"empty array", `[]`, `[]`},
		{"empty object", `{}`, `{}`},
		{"float literal keeps dot zero", `3.0`, `3.0`},
		{"float repr", `[1.0E-7,12345.678e3,5e-324,1.7976931348623157e308]`, `[1e-07,12345678.0,5e-324,1.7976931348623157e+308]`},
		{"integer", `-12`, `-12`},
		{"keys sorted by code point", `{"é":1,"e":2,"z":3,"😀":4,"\uffff":5,"":6}`, `{"":6,"e":2,"z":3,"\u00e9":1,"\uffff":5,"\ud83d\ude00":4}`},
		{"numbers", `[1e-05,0.0001,1e16,1e15,1E+2,-0.0,-0,123456789012345678901234567890,1.5e300,0.1,2.50]`, `[1e-05,0.0001,1e+16,1000000000000000.0,100.0,-0.0,0,123456789012345678901234567890,1.5e+300,0.1,2.5]`},
		{"sorted nested", `{"b":1,"a":[1.0,2,"x"],"c":{"z":null,"y":true,"x":false}}`, `{"a":[1.0,2,"x"],"b":1,"c":{"x":false,"y":true,"z":null}}`},
		{"string escapes", `"café \ud83d\ude00 \u007f \u2028 \"q\" \\ \b\f\n\r\t \u0001"`, `"caf\u00e9 \ud83d\ude00 \u007f \u2028 \"q\" \\ \b\f\n\r\t \u0001"`},
		{"zero", `0`, `0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := CanonicalJSON([]byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestCanonicalGoValues(t *testing.T) {
	t.Parallel()

	type label string
	ts := time.Date(2026, 3, 4, 5, 6, 7, 8_900, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"float32 widened like Python", float32(0.1), `0.10000000149011612`},
		{"float64 integral", 2.0, `2.0`},
		{"int", 7, `7`},
		{"json number float", json.Number("1.50"), `1.5`},
		{"json number int", json.Number("-0"), `0`},
		{"named string", label("x"), `"x"`},
		{"nil map", map[string]any(nil), `null`},
		{"nil pointer", (*int)(nil), `null`},
		{"nil slice", []any(nil), `null`},
		{"pointer to time", &ts, `"2026-03-04T04:06:07.000008+00:00"`},
		{"raw message", json.RawMessage(`{"b":1.0,"a":2}`), `{"a":2,"b":1.0}`},
		{"time truncated to microseconds in UTC", ts, `"2026-03-04T04:06:07.000008+00:00"`},
		{"time without fraction", time.Date(2026, 1, 1, 0, 0, 0, 999, time.UTC), `"2026-01-01T00:00:00+00:00"`},
		{"typed map", map[string]float64{"b": 1, "a": 0.5}, `{"a":0.5,"b":1.0}`},
		{"typed slice", []int64{3, 1}, `[3,1]`},
		{"uint64", uint64(math.MaxUint64), `18446744073709551615`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonical(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestCanonicalRejects(t *testing.T) {
	t.Parallel()

	deep := any(1.0)
	for range maxDepth + 5 {
		deep = []any{deep}
	}
	tests := []struct {
		name string
		in   any
		want error
	}{
		{"bytes", []byte("x"), ErrUnsupported},
		{"deep nesting", deep, ErrUnsupported},
		{"inf", math.Inf(1), ErrNonFinite},
		{"invalid utf8", "a\xffb", ErrUnsupported},
		{"json number overflow", json.Number("1e400"), ErrNonFinite},
		{"json number syntax", json.Number("0x10"), ErrUnsupported},
		{"nan inside map", map[string]any{"a": math.NaN()}, ErrNonFinite},
		{"non-string keys", map[int]int{1: 1}, ErrUnsupported},
		{"struct", struct{ A int }{1}, ErrUnsupported},
		{"year 0", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Canonical(tt.in)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestValidNumber(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want bool
	}{
		{"", false}, {"-", false}, {"-0", true}, {"0", true}, {"01", false}, {"1.", false},
		{"1.5", true}, {"1e", false}, {"1e+5", true}, {"1E-5", true}, {".5", false},
		{"Inf", false}, {"NaN", false}, {"1_0", false}, {"12", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, validNumber(tt.in))
		})
	}
}

// FuzzCanonicalJSON checks, for any document encoding/json accepts, that the
// canonical form is valid ASCII JSON, decodes to the same value, and is a
// fixed point of canonicalisation.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[1.0,2,"x"]}`, `"\ud83d\ude00\u007f"`, `[1e-05,1e16,-0,-0.0]`,
		`{"a":{"b":{"c":[null,true,false]}}}`, `123456789012345678901234567890`, `"\ud800"`,
		`{"a":1,"a":2}`, `1e400`, `0.1`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		out, err := CanonicalJSON(data)
		if err != nil {
			// Only numbers beyond float64 range and absurd nesting may fail.
			require.True(t, isNonFiniteOrDepth(err), "unexpected error %v for %q", err, data)
			return
		}
		require.True(t, json.Valid(out), "invalid output %q", out)
		for _, c := range out {
			require.Less(t, c, byte(0x80), "non-ASCII output %q", out)
		}
		var compact bytes.Buffer
		require.NoError(t, json.Compact(&compact, out))
		require.Equal(t, string(out), compact.String(), "whitespace outside strings")
		want, err := decodeJSON(data)
		require.NoError(t, err)
		got, err := decodeJSON(out)
		require.NoError(t, err)
		requireSameJSON(t, want, got)

		again, err := CanonicalJSON(out)
		require.NoError(t, err)
		require.Equal(t, string(out), string(again))
	})
}

func isNonFiniteOrDepth(err error) bool {
	return errors.Is(err, ErrNonFinite) || strings.Contains(err.Error(), "nesting deeper")
}

// requireSameJSON compares two decoded documents, numbers by value and kind
// (integer literal or float literal), the way Python would see them.
func requireSameJSON(t *testing.T, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		require.True(t, ok, "want object, got %T", got)
		require.Len(t, g, len(w))
		for k, v := range w {
			requireSameJSON(t, v, g[k])
		}
	case []any:
		g, ok := got.([]any)
		require.True(t, ok, "want array, got %T", got)
		require.Len(t, g, len(w))
		for i := range w {
			requireSameJSON(t, w[i], g[i])
		}
	case json.Number:
		g, ok := got.(json.Number)
		require.True(t, ok, "want number, got %T", got)
		wantInt, gotInt := !strings.ContainsAny(string(w), ".eE"), !strings.ContainsAny(string(g), ".eE")
		require.Equal(t, wantInt, gotInt, "%s vs %s", w, g)
		if wantInt {
			wi, _ := new(big.Int).SetString(string(w), 10)
			gi, _ := new(big.Int).SetString(string(g), 10)
			require.Zero(t, wi.Cmp(gi), "%s vs %s", w, g)
			return
		}
		wf, _ := strconv.ParseFloat(string(w), 64)
		gf, err := strconv.ParseFloat(string(g), 64)
		require.NoError(t, err)
		require.Equal(t, wf, gf, "%s vs %s", w, g) //nolint:testifylint // exact equality is the point
	default:
		require.Equal(t, want, got)
	}
}
