package cli

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/script"
)

// TestBuildAggregator checks that MODEL_SCORE_AGGREGATOR is loaded and dry-run at start:
// the mean stays in SQL (nil), a script is kept, a broken one stops the process.
func TestBuildAggregator(t *testing.T) {
	t.Parallel()
	opts := script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout}
	tests := []struct {
		name    string
		ref     string
		script  bool
		wantErr string
	}{
		{name: "Default", ref: ""},
		{name: "Mean", ref: "mean"},
		{name: "Script", ref: "../scoring/testdata/aggregate.star:penalised_mean", script: true},
		{name: "NotADict", ref: "../scoring/testdata/aggregate.star:not_a_dict", wantErr: "fails on sample results"},
		{name: "Unknown", ref: "median", wantErr: `unknown aggregator "median"`},
		{name: "MissingFunction", ref: "../scoring/testdata/aggregate.star:nope", wantErr: "MODEL_SCORE_AGGREGATOR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			aggregator, err := buildAggregator(context.Background(), tt.ref, "", opts)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.script, aggregator != nil)
		})
	}
}
