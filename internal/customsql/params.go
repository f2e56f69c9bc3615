package customsql

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParamType is the declared type of a parameter. It decides how the query string value is
// parsed and which SQL type the placeholder is cast to.
type ParamType string

// The parameter types a file may declare.
const (
	TypeBool        ParamType = "bool"
	TypeFloat       ParamType = "float"
	TypeInt         ParamType = "int"
	TypeText        ParamType = "text"
	TypeTimestamptz ParamType = "timestamptz"
)

// paramTypes maps each declared type to the SQL type its placeholder is cast to.
var paramTypes = map[ParamType]string{
	TypeBool:        "boolean",
	TypeFloat:       "double precision",
	TypeInt:         "bigint",
	TypeText:        "text",
	TypeTimestamptz: "timestamptz",
}

const paramTypeList = "bool, float, int, text or timestamptz"

// paramName is what a declaration may name; it is also a valid query string key without
// escaping.
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Param is one declared parameter of an endpoint.
type Param struct {
	// Default is the typed default (int64, float64, string, bool or time.Time), or nil when
	// the declaration has none: the parameter is then NULL unless the request gives it.
	Default any
	// DefaultText is the default as written in the file, for documentation.
	DefaultText string
	// Line is the declaration's line in the file.
	Line int
	Name string
	Type ParamType
}

// ParamError is a request value that does not parse as its parameter's declared type. It is
// the caller's mistake: HTTP callers answer it with 422.
type ParamError struct {
	Name   string
	Reason string
	Type   ParamType
	Value  string
}

func (e *ParamError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("parameter %q: %s", e.Name, e.Reason)
	}
	return fmt.Sprintf("parameter %q: %q %s", e.Name, e.Value, e.Reason)
}

// timestampLayouts are the ISO 8601 forms accepted, most common first. A value without a
// zone is UTC, like every timestamp the report API emits without one.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	time.DateOnly,
}

// parseValue parses one textual value as the given type. Its errors complete a sentence
// that starts with the value: `"abc" is not a 64-bit integer`.
func parseValue(typ ParamType, s string) (any, error) {
	switch typ {
	case TypeBool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, errors.New("is not a bool (true or false)")
		}
		return v, nil
	case TypeFloat:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("is not a finite number")
		}
		return v, nil
	case TypeInt:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, errors.New("is not a 64-bit integer")
		}
		return v, nil
	case TypeText:
		// Postgres text cannot hold NUL or invalid UTF-8; refusing them here gives the
		// caller a 422 instead of a database error.
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return nil, errors.New("is not valid UTF-8 text")
		}
		return s, nil
	case TypeTimestamptz:
		return parseTimestamp(s)
	}
	return nil, fmt.Errorf("unknown type %q", typ)
}

func parseTimestamp(s string) (any, error) {
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	// An unescaped "+" in a query string arrives as a space: "…T12:00:00 02:00" was meant
	// as "…T12:00:00+02:00".
	if i := strings.LastIndexByte(s, ' '); i > 0 && len(s)-i == 6 && s[i+3] == ':' {
		if t, err := time.Parse(time.RFC3339Nano, s[:i]+"+"+s[i+1:]); err == nil {
			return t.UTC(), nil
		}
	}
	return nil, errors.New("is not an ISO 8601 timestamp (for example 2026-03-20T12:00:00Z)")
}

// Bind turns request query values into the query's arguments, in declaration order. A
// parameter that is absent, or empty for a type other than text, takes its default or NULL.
// Query values the endpoint does not declare are ignored, like everywhere in the report API
// (chart widgets always send projectIds, start and end).
func (e *Endpoint) Bind(values url.Values) ([]any, error) {
	args := make([]any, len(e.Params))
	for i, p := range e.Params {
		given, ok := values[p.Name]
		switch {
		case !ok:
			args[i] = p.Default
			continue
		case len(given) > 1:
			return nil, &ParamError{Name: p.Name, Type: p.Type, Reason: "is given more than once"}
		case given[0] == "" && p.Type != TypeText:
			args[i] = p.Default
			continue
		}
		v, err := parseValue(p.Type, given[0])
		if err != nil {
			return nil, &ParamError{Name: p.Name, Type: p.Type, Value: given[0], Reason: err.Error()}
		}
		args[i] = v
	}
	return args, nil
}
