package scoring

import (
	"fmt"
	"maps"
	"slices"

	"github.com/crunchnode/crunch-node/internal/jsonvalue"
)

// AppendJSON appends the score dict ([Result.Map]) as a JSON object with sorted keys.
// The score path encodes one result per prediction; going through Map and
// encoding/json's reflection cost more than the rest of a score's preparation, so the
// values are written by jsonvalue, which only leaves unusual extra values to
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
		buf, _ = jsonvalue.Append(buf, key) // a string always encodes
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
		if buf, err = jsonvalue.Append(buf, value); err != nil {
			return nil, fmt.Errorf("encoding %q: %w", key, err)
		}
	}
	return append(buf, '}'), nil
}
