package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// naiveTime is a UTC instant written as an ISO 8601 string without a zone, like the Python
// engine's `_strip_tz`: the CrunchDAO line chart appends "Z" to its x values before parsing
// them, so a value that already carries a zone becomes an Invalid Date and draws nothing.
// Fractional seconds are written as 6 digits when present, as Python's isoformat does.
type naiveTime time.Time

func (t naiveTime) String() string {
	u := time.Time(t).UTC().Truncate(time.Microsecond)
	if u.Nanosecond() == 0 {
		return u.Format("2006-01-02T15:04:05")
	}
	return u.Format("2006-01-02T15:04:05.000000")
}

// MarshalJSON writes the zone-less string.
func (t naiveTime) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, t.String()), nil
}

// Schema documents the field as a string; huma would otherwise describe the struct.
func (naiveTime) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{
		Type:        huma.TypeString,
		Description: "UTC time without zone suffix (the CrunchDAO charts append Z themselves).",
		Examples:    []any{"2026-03-20T12:00:00"},
	}
}

func naivePtr(t *time.Time) *naiveTime {
	if t == nil {
		return nil
	}
	n := naiveTime(*t)
	return &n
}

// utcPtr normalises a database time to UTC so it encodes with a Z suffix (pgx returns
// times in the local zone), truncated to the microseconds Postgres stores.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// jsonObject is a jsonb object passed through unchanged; nil and JSON null encode as {},
// which clients iterating over it can rely on.
type jsonObject json.RawMessage

// MarshalJSON writes the stored JSON.
func (o jsonObject) MarshalJSON() ([]byte, error) {
	if len(o) == 0 || string(o) == "null" {
		return []byte("{}"), nil
	}
	return o, nil
}

// Schema documents a free-form object.
func (jsonObject) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeObject, AdditionalProperties: true}
}

// decodeObject reads a jsonb object into a map; anything else (null, an array) is empty.
func decodeObject(raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		var notObject *json.UnmarshalTypeError
		if errors.As(err, &notObject) {
			return map[string]any{}, nil
		}
		return nil, fmt.Errorf("decoding JSON object: %w", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// metricValue converts a metric the way the Python engine's float() did for the
// leaderboard: numbers stay, booleans become 1 or 0, numeric strings are parsed, anything
// else is null.
func metricValue(v any) *float64 {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case bool:
		if x {
			f = 1
		}
	case string:
		parsed, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil
		}
		f = parsed
	default:
		return nil
	}
	return &f
}

// numericFields keeps the number-valued entries of a summary, as the Python engine's
// isinstance(v, (int, float)) filters did for chart rows.
func numericFields(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out
}

// scalarFields keeps the string, number and boolean entries of a scope; they become
// top-level row keys that the UI's filters and group-by read.
func scalarFields(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch v.(type) {
		case string, float64, bool:
			out[k] = v
		}
	}
	return out
}

// marshalFlat encodes v, a struct, and appends the entries of flat as further top-level
// keys, sorted. The struct's own fields win over flat entries of the same name, so the
// join keys the UI relies on (model_id, rank, performed_at) cannot be overwritten by a
// metric that happens to share their name.
func marshalFlat(v any, flat map[string]any) ([]byte, error) {
	fixed, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(flat) == 0 {
		return fixed, nil
	}
	taken := jsonKeys(reflect.TypeOf(v))
	keys := make([]string, 0, len(flat))
	for k := range flat {
		if !slices.Contains(taken, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var buf bytes.Buffer
	buf.Grow(len(fixed) + 24*len(keys))
	buf.Write(fixed[:len(fixed)-1])
	empty := len(fixed) == 2
	for _, k := range keys {
		value, err := json.Marshal(flat[k])
		if err != nil {
			return nil, fmt.Errorf("encoding %q: %w", k, err)
		}
		if !empty {
			buf.WriteByte(',')
		}
		empty = false
		key, _ := json.Marshal(k)
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(value)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// jsonKeys lists the JSON names of a struct's encoded fields.
func jsonKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		keys = append(keys, name)
	}
	return keys
}
