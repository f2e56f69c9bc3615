package scoring

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// AppendJSON appends the score dict ([Result.Map]) as a JSON object with sorted keys.
// The score path encodes one result per prediction; going through Map and
// encoding/json's reflection cost more than the rest of a score's preparation, so the
// common value types are written directly and only unusual extra values fall back to
// encoding/json. NaN and infinities are refused, as encoding/json refuses them.
func (r Result) AppendJSON(buf []byte) ([]byte, error) {
	keys := slices.Collect(maps.Keys(r.Extra))
	for _, own := range []string{"failed_reason", "success", "value"} {
		if _, dup := r.Extra[own]; !dup {
			keys = append(keys, own)
		}
	}
	slices.Sort(keys)
	buf = append(buf, '{')
	for i, key := range keys {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, key)
		buf = append(buf, ':')
		var value any
		switch key {
		case "value":
			value = r.Value
		case "success":
			value = r.Success
		case "failed_reason":
			if !r.Success {
				value = r.FailedReason
			}
		default:
			value = r.Extra[key]
		}
		var err error
		if buf, err = appendJSONValue(buf, value); err != nil {
			return nil, fmt.Errorf("encoding %q: %w", key, err)
		}
	}
	return append(buf, '}'), nil
}

func appendJSONValue(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case bool:
		return strconv.AppendBool(buf, v), nil
	case string:
		return appendJSONString(buf, v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("unsupported value %v", v)
		}
		return strconv.AppendFloat(buf, v, 'g', -1, 64), nil
	case int:
		return strconv.AppendInt(buf, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	default:
		encoded, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return append(buf, encoded...), nil
	}
}

// appendJSONString writes plain ASCII strings directly and leaves escaping to
// encoding/json for anything else.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			encoded, _ := json.Marshal(s) // a string always encodes
			return append(buf, encoded...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
