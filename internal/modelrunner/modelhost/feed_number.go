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

// maxMantissaDigits is how many significant digits scanNumber keeps: a
// uint64 holds them all, and so many are beyond 2^53, so a number that has
// more is for strconv anyway.
const maxMantissaDigits = 19

// maxExp bounds the exponent scanNumber accumulates, far beyond float64's
// range. strconv.ParseFloat ignores an exponent's digits past the same bound
// (and can then read a long enough fraction as another value than the
// text's), so a longer exponent is left for strconv to read, whatever it
// makes of it.
const maxExp = 10_000

// decimal is a JSON number as read by scanNumber: ±mantissa × 10^exp, up to
// the significant digits past maxMantissaDigits; longExp says the exponent
// was too long to hold.
type decimal struct {
	mantissa uint64
	exp      int
	neg      bool
	longExp  bool
}

// scanNumber reads the number at data[pos:] under JSON's strict grammar (no
// leading zeros, no bare '.', no '+' sign, as variant.NumberEnd) and returns
// where it ends, and false when no number starts there. It gathers the
// decimal digits on the way, so a number is read once whether it is
// converted or skipped.
func scanNumber(data []byte, pos int) (d decimal, end int, ok bool) {
	if pos < len(data) && data[pos] == '-' {
		d.neg = true
		pos++
	}
	var digits int // significant digits in d.mantissa
	switch {
	case pos >= len(data):
		return d, pos, false
	case data[pos] == '0':
		pos++
	case data[pos] <= '9' && data[pos] >= '1':
		pos, d.mantissa, digits = mantissaDigits(data, pos, 0, 0)
	default:
		return d, pos, false
	}
	if pos < len(data) && data[pos] == '.' {
		start := pos + 1
		pos, d.mantissa, _ = mantissaDigits(data, start, d.mantissa, digits)
		if pos == start {
			return d, pos, false
		}
		d.exp = start - pos
	}
	if pos < len(data) && (data[pos] == 'e' || data[pos] == 'E') {
		pos++
		negExp := false
		if pos < len(data) && (data[pos] == '+' || data[pos] == '-') {
			negExp = data[pos] == '-'
			pos++
		}
		start := pos
		exp := 0
		for ; pos < len(data) && data[pos] <= '9' && data[pos] >= '0'; pos++ {
			if exp < maxExp {
				exp = exp*10 + int(data[pos]-'0')
			} else {
				d.longExp = true
			}
		}
		if pos == start {
			return d, pos, false
		}
		if negExp {
			exp = -exp
		}
		d.exp += exp
	}
	return d, pos, true
}

// mantissaDigits appends the digits at data[pos:] to a mantissa of digits
// significant digits, keeping up to maxMantissaDigits of them, and returns
// where they end.
func mantissaDigits(data []byte, pos int, mantissa uint64, digits int) (end int, _ uint64, _ int) {
	for ; pos < len(data); pos++ {
		c := data[pos] - '0'
		if c > 9 {
			break
		}
		if digits < maxMantissaDigits {
			mantissa = mantissa*10 + uint64(c)
			if mantissa != 0 {
				digits++
			}
		}
	}
	return pos, mantissa, digits
}

// float converts a decimal read from text as strconv.ParseFloat does, except
// that out of range is not an error: it gives ±Inf or ±0, as the generic
// decoder's Python-compatible path does.
func (d decimal) float(text []byte) (float64, error) {
	if f, ok := d.exactFloat(); ok {
		return f, nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, errGeneric
	}
	return f, nil
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
