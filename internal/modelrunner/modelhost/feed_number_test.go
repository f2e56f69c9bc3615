package modelhost

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// numberTexts are JSON numbers (and near misses) around the edges of the
// exact conversion: exponents, signs, 17 and more significant digits, 2^53,
// 10^22, and values beyond float64's range.
var numberTexts = []string{
	"0", "-0", "0.0", "-0.0", "0e0", "-0e-0", "0e999999", "-0E+400", "0.000",
	"1", "-1", "7", "100", "97012.5", "-97012.25", "96990", "12.345", "1732500000",
	"0.1", "0.3", "-0.000001", "1e1", "1E+2", "1e-2", "-1.25e2", "5e-324", "4.9e-324", "2e-324",
	"1e22", "1e23", "1e-22", "1e-23", "123456789e22", "123456789e-22",
	"9007199254740991", "9007199254740992", "9007199254740993", "-9007199254740993",
	"4503599627370495.5", "4503599627370497", "900719925474099.1", "9007199254740991e-5",
	"0.1234567890123456789", "12345678901234567890", "1234567890123456789",
	"9999999999999999999", "99999999999999999999", "18446744073709551615", "18446744073709551616",
	"1.7976931348623157e308", "1.7976931348623159e308", "1.8e308", "-1e400", "1e400", "1e-400",
	"2.2250738585072011e-308", "2.2250738585072014e-308", "0.30000000000000004",
	"1e100000", "1e1000000", "1e-1000000", "0.00000000000000000000000001e26", "1e0000000000000000000001",
	// strconv stops reading an exponent at 10000: past it, a long enough
	// fraction makes it read a value other than the text's.
	"0." + strings.Repeat("0", 9_999) + "1e10000",
	"0." + strings.Repeat("0", 10_004) + "1e10005",
	"0." + strings.Repeat("0", 99_999) + "1e100000",
	"0." + strings.Repeat("0", 99_999) + "1e1000005",
	strings.Repeat("9", 400), "1" + strings.Repeat("0", 30) + "e-30",
	// Not numbers under JSON's grammar.
	"", "-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1E-", "--1", "0x10", "1_000", "NaN", "Infinity", "-Infinity",
	// A number followed by something else: bytes on either side of the
	// digits, after runs of many lengths.
	"1,", "2]", "3}", "-4.5e6 ", "0.5x", "1e5e5", "00", "1.2.3",
	"12345678", "123456789", "1234567/", "12345678:", "123456789012345\x80", "1234567890123456\xba",
	"1.2345678\xff0", "9.87654321e12345678,", "-1234567.12345678e-1234567 ",
}

func TestNumberMatchesStrconv(t *testing.T) {
	t.Parallel()

	for _, text := range numberTexts {
		checkNumber(t, []byte(text))
	}
	for n := range 20 {
		digits := strings.Repeat("7", n)
		for _, after := range []string{"", "/", ":", "\x00", "\x7f", "\x80", "\xb9", "\xba", "\xff", "e", "."} {
			checkNumber(t, []byte("1"+digits+after+"123456789"))
			checkNumber(t, []byte("0."+digits+after+"123456789"))
		}
	}
	// Random decimals around the exact conversion's bounds: up to 20
	// significant digits, a point anywhere, exponents up to ±30.
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20_000 {
		var b strings.Builder
		if rng.IntN(2) == 0 {
			b.WriteByte('-')
		}
		digits := strconv.FormatUint(rng.Uint64()>>rng.UintN(64), 10)
		if point := rng.IntN(len(digits) + 1); point < len(digits) && point > 0 {
			digits = digits[:point] + "." + digits[point:]
		}
		b.WriteString(digits)
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&b, "e%d", rng.IntN(61)-30)
		}
		checkNumber(t, []byte(b.String()))
	}
	// Spot checks that the comparison itself is sharp: signs of zero and
	// infinities, and the nearest float64 of a halfway case.
	for text, want := range map[string]float64{
		"-0":                   math.Copysign(0, -1),
		"1e400":                math.Inf(1),
		"-1e400":               math.Inf(-1),
		"1e-400":               0,
		"9007199254740993":     9007199254740992,
		"97012.5":              97012.5,
		"1732500000":           1732500000,
		"-1.25e2":              -125,
		"0.1":                  0.1,
		"1e1000000":            math.Inf(1),
		"12.345":               12.345,
		"123456789e-22":        123456789e-22,
		"9007199254740991":     9007199254740991,
		"-0.000001":            -0.000001,
		"0.3":                  0.3,
		"4.9e-324":             5e-324,
		"1e23":                 1e23,
		"1e22":                 1e22,
		"18446744073709551616": 18446744073709551616,
	} {
		got, err := parseNumber([]byte(text))
		require.NoError(t, err, text)
		require.Equal(t, math.Float64bits(want), math.Float64bits(got), text)
	}
}

func FuzzNumber(f *testing.F) {
	for _, text := range numberTexts {
		if len(text) < 1000 {
			f.Add([]byte(text))
		}
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		checkNumber(t, text)
	})
}

// checkNumber compares numberEnd with variant.NumberEnd on where the number
// at the start of text ends, and its conversion with strconv.ParseFloat bit
// for bit (out of range giving ±Inf or ±0).
func checkNumber(t *testing.T, text []byte) {
	t.Helper()
	end, ok := numberEnd(text, 0)
	wantEnd, wantOK := variant.NumberEnd(text, 0)
	require.Equal(t, wantOK, ok, "%.80q", text)
	require.Equal(t, wantEnd, end, "%.80q", text)
	if !ok {
		return
	}
	want, err := strconv.ParseFloat(string(text[:end]), 64)
	if err != nil {
		require.True(t, errors.Is(err, strconv.ErrRange), "%.80q: %v", text, err)
	}
	got, err := parseNumber(text[:end])
	require.NoError(t, err, "%.80q", text)
	require.Equal(t, math.Float64bits(want), math.Float64bits(got), "%.80q: want %v, got %v", text, want, got)
}
