package modelhost

import (
	"errors"
	"strconv"
)

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// fullMantissa is where readDecimal stops adding digits to a mantissa: a
// uint64 holds ten times as much, and it is beyond 2^53, so the number is for
// strconv anyway.
const fullMantissa = 1e18

// maxExp bounds the exponent readDecimal accumulates, far beyond float64's
// range. strconv.ParseFloat ignores an exponent's digits past the same bound
// (and can then read a long enough fraction as another value than the
// text's), so a longer exponent is left for strconv to read, whatever it
// makes of it.
const maxExp = 10_000

// numberEnd returns where the number at data[pos:] ends under JSON's strict
// grammar (no leading zeros, no bare '.', no '+' sign), as
// variant.NumberEnd, and false when no number starts there.
func numberEnd(data []byte, pos int) (int, bool) {
	if pos < len(data) && data[pos] == '-' {
		pos++
	}
	switch {
	case pos >= len(data):
		return pos, false
	case data[pos] == '0':
		pos++
	case data[pos] <= '9' && data[pos] >= '1':
		pos = digitsEnd(data, pos+1)
	default:
		return pos, false
	}
	if pos < len(data) && data[pos] == '.' {
		end := digitsEnd(data, pos+1)
		if end == pos+1 {
			return end, false
		}
		pos = end
	}
	if pos < len(data) && (data[pos] == 'e' || data[pos] == 'E') {
		pos++
		if pos < len(data) && (data[pos] == '+' || data[pos] == '-') {
			pos++
		}
		end := digitsEnd(data, pos)
		if end == pos {
			return end, false
		}
		pos = end
	}
	return pos, true
}

// digitsEnd returns where the decimal digits at data[pos:] end.
func digitsEnd(data []byte, pos int) int {
	for pos < len(data) && data[pos] <= '9' && data[pos] >= '0' {
		pos++
	}
	return pos
}

// decimal is a JSON number as read by readDecimal: ±mantissa × 10^exp, but
// for the digits past a full mantissa; longExp says the exponent was too long
// to hold.
type decimal struct {
	mantissa uint64
	exp      int
	neg      bool
	longExp  bool
}

// parseNumber converts a number that numberEnd found, as
// strconv.ParseFloat does, except that out of range is not an error: it gives
// ±Inf or ±0, as the generic decoder's Python-compatible path does.
func parseNumber(text []byte) (float64, error) {
	if f, ok := readDecimal(text).exactFloat(); ok {
		return f, nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errGeneric
	}
	return f, nil
}

// readDecimal reads the digits of a number that numberEnd found (so
// whatever follows a digit run is '.', 'e', 'E' or the end).
func readDecimal(text []byte) (d decimal) {
	pos := 0
	if text[0] == '-' {
		d.neg = true
		pos++
	}
	pos, d.mantissa = mantissaDigits(text, pos, 0)
	if pos < len(text) && text[pos] == '.' {
		start := pos + 1
		pos, d.mantissa = mantissaDigits(text, start, d.mantissa)
		d.exp = start - pos
	}
	if pos == len(text) {
		return d
	}
	pos++ // 'e' or 'E'
	negExp := text[pos] == '-'
	if text[pos] == '-' || text[pos] == '+' {
		pos++
	}
	exp := 0
	for _, c := range text[pos:] {
		if exp >= maxExp {
			d.longExp = true
			break
		}
		exp = exp*10 + int(c-'0')
	}
	if negExp {
		exp = -exp
	}
	d.exp += exp
	return d
}

// mantissaDigits appends the digits at data[pos:] to mantissa until it is
// full, and returns where they end.
func mantissaDigits(data []byte, pos int, mantissa uint64) (end int, _ uint64) {
	for ; pos < len(data); pos++ {
		c := data[pos] - '0'
		if c > 9 {
			break
		}
		if mantissa < fullMantissa {
			mantissa = mantissa*10 + uint64(c)
		}
	}
	return pos, mantissa
}

// exactFloat converts the decimals whose mantissa is below 2^53 and whose
// power of ten is at most 10^22: both are exact float64s, so one
// multiplication or division rounds correctly. That covers prices and Unix
// times.
func (d decimal) exactFloat() (float64, bool) {
	if d.mantissa >= 1<<53 || d.longExp {
		return 0, false
	}
	f := float64(d.mantissa)
	if d.neg {
		f = -f
	}
	switch {
	case d.mantissa == 0 || d.exp == 0:
		return f, true
	case d.exp > 0 && d.exp < len(exactPow10):
		return f * exactPow10[d.exp], true
	case d.exp < 0 && -d.exp < len(exactPow10):
		return f / exactPow10[-d.exp], true
	}
	return 0, false
}
