// Package jsonvalue encodes decoded JSON values (map[string]any, []any, strings,
// float64, …) byte for byte as encoding/json does, without reflection. The predict tick
// encodes its model input, a window of a hundred-odd candle maps, on the path from a feed
// record to the committed predictions: encoding/json spends most of its time there
// reflecting on each map and sorting its keys through reflect values. The score path
// writes each score's result with it too.
package jsonvalue

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// Marshal is json.Marshal for decoded JSON values.
func Marshal(v any) ([]byte, error) {
	return Append(nil, v)
}

// Append appends the encoding of v to dst. Values of other types than those a JSON
// decoder yields (and int, int64) are encoded by encoding/json, so the result and the
// errors are always json.Marshal's.
func Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case string:
		return appendString(dst, v)
	case float64:
		return appendFloat(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case map[string]any:
		return appendObject(dst, v)
	case []any:
		if v == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = Append(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	return appendMarshaled(dst, v)
}

// appendObject writes the members in key order, as encoding/json sorts them.
func appendObject(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	var keysArr [16]string
	keys := keysArr[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendString(dst, k); err != nil {
			return nil, err
		}
		dst = append(dst, ':')
		if dst, err = Append(dst, m[k]); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendString quotes s itself when it needs no escape: encoding/json escapes control
// characters, quotes, backslashes, <, > and & (for HTML), U+2028 and U+2029, and replaces
// invalid UTF-8, and all of that is left to it.
func appendString(dst []byte, s string) ([]byte, error) {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendMarshaled(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}

// appendFloat formats f as encoding/json does: the shortest decimal, in exponent form
// below 1e-6 and from 1e21 on, with a one-digit negative exponent not zero-padded.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return appendMarshaled(dst, f) // the UnsupportedValueError
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

func appendMarshaled(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}
