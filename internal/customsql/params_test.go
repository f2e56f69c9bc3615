package customsql

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseValue(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		typ   ParamType
		in    string
		want  any
		error string
	}{
		{name: "BoolFalse", typ: TypeBool, in: "f", want: false},
		{name: "BoolInvalid", typ: TypeBool, in: "yes", error: "is not a bool (true or false)"},
		{name: "BoolTrue", typ: TypeBool, in: "true", want: true},
		{name: "FloatExponent", typ: TypeFloat, in: "1e-3", want: 0.001},
		{name: "FloatInfinity", typ: TypeFloat, in: "Inf", error: "is not a finite number"},
		{name: "FloatNaN", typ: TypeFloat, in: "NaN", error: "is not a finite number"},
		{name: "IntInvalid", typ: TypeInt, in: "3.5", error: "is not a 64-bit integer"},
		{name: "IntNegative", typ: TypeInt, in: "-42", want: int64(-42)},
		{name: "IntOverflow", typ: TypeInt, in: "9223372036854775808", error: "is not a 64-bit integer"},
		{name: "TextInvalidUTF8", typ: TypeText, in: "a\xffb", error: "is not valid UTF-8 text"},
		{name: "TextNUL", typ: TypeText, in: "a\x00b", error: "is not valid UTF-8 text"},
		{name: "TextUnicode", typ: TypeText, in: "é ✓", want: "é ✓"},
		{name: "TimestampDate", typ: TypeTimestamptz, in: "2026-03-20", want: time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)},
		{name: "TimestampInvalid", typ: TypeTimestamptz, in: "yesterday", error: "is not an ISO 8601 timestamp (for example 2026-03-20T12:00:00Z)"},
		{name: "TimestampJavaScript", typ: TypeTimestamptz, in: "2026-03-20T12:00:00.123Z", want: time.Date(2026, 3, 20, 12, 0, 0, 123e6, time.UTC)},
		{name: "TimestampNaiveIsUTC", typ: TypeTimestamptz, in: "2026-03-20T12:00:00.5", want: time.Date(2026, 3, 20, 12, 0, 0, 5e8, time.UTC)},
		{name: "TimestampOffset", typ: TypeTimestamptz, in: "2026-03-20T12:00:00+02:00", want: time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC)},
		{name: "TimestampPlusAsSpace", typ: TypeTimestamptz, in: "2026-03-20T12:00:00 02:00", want: time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC)},
		{name: "TimestampSpaceSeparated", typ: TypeTimestamptz, in: "2026-03-20 12:00:00", want: time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseValue(tt.typ, tt.in)
			if tt.error != "" {
				require.EqualError(t, err, tt.error)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestBind(t *testing.T) {
	t.Parallel()
	endpoint := &Endpoint{Name: "e", Params: []Param{
		{Default: int64(10), DefaultText: "10", Name: "limit", Type: TypeInt},
		{Name: "model_id", Type: TypeText},
		{Name: "since", Type: TypeTimestamptz},
	}}

	tests := []struct {
		name  string
		query string
		want  []any
		error string
	}{
		{name: "Absent", query: "", want: []any{int64(10), nil, nil}},
		{name: "EmptyNonTextIsAbsent", query: "limit=&since=", want: []any{int64(10), nil, nil}},
		{name: "EmptyTextIsEmpty", query: "model_id=", want: []any{int64(10), "", nil}},
		{name: "Given", query: "limit=3&model_id=m1&since=2026-01-01T00:00:00Z", want: []any{int64(3), "m1", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "Invalid", query: "limit=ten", error: `parameter "limit": "ten" is not a 64-bit integer`},
		{name: "Repeated", query: "model_id=a&model_id=b", error: `parameter "model_id": is given more than once`},
		{name: "UnknownIgnored", query: "projectIds=a,b&start=x&api_key=k", want: []any{int64(10), nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			values, err := url.ParseQuery(tt.query)
			require.NoError(t, err)
			got, err := endpoint.Bind(values)
			if tt.error != "" {
				var paramErr *ParamError
				require.ErrorAs(t, err, &paramErr)
				require.EqualError(t, err, tt.error)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
