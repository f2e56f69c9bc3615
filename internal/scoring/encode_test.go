package scoring

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResultAppendJSON checks the direct encoder against encoding/json of Result.Map:
// same object, same key order.
func TestResultAppendJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		result Result
	}{
		{name: "Success", result: Result{Success: true, Value: 0.125}},
		{name: "Failed", result: Result{FailedReason: `scorer said "no" <because>\n`, Value: 0}},
		{name: "Extras", result: Result{Success: true, Value: -3.5e-9, Extra: map[string]any{
			"profit": 1e21, "hit": true, "label": "ünïcode", "n": 3, "nested": map[string]any{"a": []any{1.0, "x"}}, "none": nil,
		}}},
		{name: "ExtraShadowsOwnKey", result: Result{Success: true, Value: 2, Extra: map[string]any{"value": 2.0}}},
		{name: "ControlCharacterKey", result: Result{Success: true, Value: 1, Extra: map[string]any{"a\x01b": 1.0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.result.AppendJSON(nil)
			require.NoError(t, err)
			want, err := json.Marshal(tt.result.Map())
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(got))
			require.True(t, json.Valid(got), "%s", got)
		})
	}
}

func TestResultAppendJSONRefusesNaN(t *testing.T) {
	t.Parallel()
	_, err := Result{Success: true, Value: math.NaN()}.AppendJSON(nil)
	require.ErrorContains(t, err, `encoding "value"`)
	_, err = Result{Success: true, Value: 1, Extra: map[string]any{"x": math.Inf(1)}}.AppendJSON(nil)
	require.ErrorContains(t, err, `encoding "x"`)
}

func BenchmarkResultEncode(b *testing.B) {
	r := Result{Success: true, Value: 0.0123, Extra: map[string]any{"profit": 0.001, "direction_up": true}}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = r.AppendJSON(buf[:0])
		}
	})
	b.Run("MapMarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(r.Map())
		}
	})
}
