package merkle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting so that a cyclic or hostile value fails with an
// error instead of exhausting the stack. Python's own recursion limit (1000)
// is of the same order, so no value Python can encode is refused.
const maxDepth = 900

var (
	// ErrNonFinite is returned for NaN and ±Inf. Python would write the
	// non-JSON tokens NaN/Infinity; no verifier should have to parse those,
	// so such a value cannot be committed at all.
	ErrNonFinite = errors.New("non-finite number")

	// ErrUnsupported is returned for values whose JSON form is ambiguous
	// between Go and Python (structs, byte slices, channels, non-string map
	// keys, invalid UTF-8, years outside 1..9999, …).
	ErrUnsupported = errors.New("unsupported value")
)

// Canonical encodes v byte-for-byte as Python's
//
//	json.dumps(v, sort_keys=True, separators=(",", ":"))
//
// (ensure_ascii on, datetimes as isoformat()), because leaf hashes must
// match the Python engine and any third-party verifier. The rules:
//
//   - object keys sorted by code point at every depth; no whitespace;
//   - strings ASCII-only: `\"`, `\\`, `\b \f \n \r \t`, other control
//     characters and DEL as `\u00xx`, everything beyond ASCII as lowercase
//     `\uxxxx` (UTF-16 surrogate pairs above U+FFFF);
//   - Go integers and json.Number literals without '.', 'e' or 'E' are
//     integers (any size, normalised like Python's int: "-0" → "0");
//   - float64, float32 and other json.Number literals are floats in
//     Python's repr: shortest round-trip digits, "1.0" keeps its ".0",
//     exponent form ("1e-05", "1e+16") when the decimal exponent is < -4
//     or >= 16; NaN and ±Inf are refused with [ErrNonFinite];
//   - time.Time is converted to UTC, truncated to microseconds (the
//     precision of Postgres and Python) and written as the string
//     YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00, the fraction omitted when zero;
//   - json.RawMessage is decoded (numbers kept as json.Number) and
//     re-encoded; nil maps, slices and pointers are null.
//
// Callers that round-trip values through JSON must keep the int/float
// distinction: a float64 1.0 marshalled by encoding/json comes back as the
// integer 1 and hashes differently. Decode with json.Decoder.UseNumber and
// write floats with [Canonical] (or a formatter that keeps ".0").
func Canonical(v any) ([]byte, error) {
	return appendValue(make([]byte, 0, 256), v, 0)
}

// CanonicalJSON re-encodes a JSON document canonically. Numbers keep the
// int/float distinction of their literal, so "1.0" stays a float.
func CanonicalJSON(raw []byte) ([]byte, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	return Canonical(v)
}

// FormatTime renders t as Python's isoformat() of the same instant in UTC.
// The report API should serve snapshot periods in this form so that a
// verifier can hash them as plain strings.
func FormatTime(t time.Time) (string, error) {
	b, err := appendTimeText(nil, t)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding json: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decoding json: %w: trailing data", ErrUnsupported)
	}
	return v, nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nesting deeper than %d", ErrUnsupported, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, x)
	case json.Number:
		return appendNumber(b, string(x))
	case json.RawMessage:
		if x == nil {
			return append(b, "null"...), nil
		}
		inner, err := decodeJSON(x)
		if err != nil {
			return nil, err
		}
		return appendValue(b, inner, depth+1)
	case float64:
		return appendFloat(b, x)
	case float32:
		return appendFloat(b, float64(x))
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case time.Time:
		b = append(b, '"')
		b, err := appendTimeText(b, x)
		if err != nil {
			return nil, err
		}
		return append(b, '"'), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys) // byte order of UTF-8 is code point order
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendString(b, k); err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			b = append(b, ':')
			if b, err = appendValue(b, x[k], depth+1); err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
		}
		return append(b, '}'), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, fmt.Errorf("index %d: %w", i, err)
			}
		}
		return append(b, ']'), nil
	}
	return appendReflect(b, reflect.ValueOf(v), depth)
}

// appendReflect covers the typed containers and scalar kinds a caller may
// reasonably hold (map[string]float64, []int64, named string types, …).
func appendReflect(b []byte, rv reflect.Value, depth int) ([]byte, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return strconv.AppendBool(b, rv.Bool()), nil
	case reflect.String:
		return appendString(b, rv.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(b, rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return appendFloat(b, rv.Float())
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return append(b, "null"...), nil
		}
		return appendValue(b, rv.Elem().Interface(), depth+1)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%w: map key type %s", ErrUnsupported, rv.Type().Key())
		}
		if rv.IsNil() {
			return append(b, "null"...), nil
		}
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return appendValue(b, m, depth)
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			// encoding/json writes base64, Python has no bytes in JSON.
			return nil, fmt.Errorf("%w: byte slice", ErrUnsupported)
		}
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return append(b, "null"...), nil
		}
		s := make([]any, rv.Len())
		for i := range s {
			s[i] = rv.Index(i).Interface()
		}
		return appendValue(b, s, depth)
	case reflect.Invalid:
		return append(b, "null"...), nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, rv.Type())
}

// appendFloat writes Python's repr(float). Python's float_repr_style
// "short" picks the shortest digits that round-trip, like strconv with
// precision -1, and switches to exponent form when the decimal exponent is
// below -4 or at least 16; the exponent then has a sign and at least two
// digits, which is exactly strconv's 'e' format.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: %v", ErrNonFinite, f)
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(b, "-0.0"...), nil
		}
		return append(b, "0.0"...), nil
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	i := bytes.IndexByte(e, 'e')
	exp, err := strconv.Atoi(string(e[i+1:]))
	if err != nil {
		return nil, fmt.Errorf("formatting %v: %w", f, err)
	}
	if exp < -4 || exp >= 16 {
		return append(b, e...), nil
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b, nil
}

// appendNumber keeps the int/float distinction of a JSON literal, the way
// Python's json.loads does before dumps writes it back.
func appendNumber(b []byte, s string) ([]byte, error) {
	if !validNumber(s) {
		return nil, fmt.Errorf("%w: invalid number literal %q", ErrUnsupported, s)
	}
	if !strings.ContainsAny(s, ".eE") {
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("%w: invalid integer literal %q", ErrUnsupported, s)
		}
		return n.Append(b, 10), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("parsing %q: %w", s, err)
	}
	// Overflow gives ±Inf (refused below); underflow gives 0 like Python.
	return appendFloat(b, f)
}

// validNumber checks the JSON number grammar, which is narrower than what
// strconv accepts ("Inf", "0x1p3", "1_0", …).
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

const hexDigits = "0123456789abcdef"

// appendString writes Python's ensure_ascii string encoding. Python escapes
// every character outside ' '..'~' (so DEL too), using the short forms only
// for \b \f \n \r \t and lowercase hex otherwise.
func appendString(b []byte, s string) ([]byte, error) {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"':
				b = append(b, '\\', '"')
			case c == '\\':
				b = append(b, '\\', '\\')
			case c >= 0x20 && c < 0x7f:
				b = append(b, c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			default:
				b = appendU(b, rune(c))
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, fmt.Errorf("%w: invalid UTF-8 at byte %d", ErrUnsupported, i)
		}
		i += size
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			b = appendU(appendU(b, hi), lo)
			continue
		}
		b = appendU(b, r)
	}
	return append(b, '"'), nil
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u',
		hexDigits[(r>>12)&0xf], hexDigits[(r>>8)&0xf], hexDigits[(r>>4)&0xf], hexDigits[r&0xf])
}

// appendTimeText writes the isoformat() text without quotes.
func appendTimeText(b []byte, t time.Time) ([]byte, error) {
	t = t.UTC().Truncate(time.Microsecond)
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("%w: year %d outside 1..9999", ErrUnsupported, y)
	}
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		b = append(b, fmt.Sprintf("%06d", us)...)
	}
	return append(b, "+00:00"...), nil
}
