package scoring

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/script"
)

func TestRegistryBuiltins(t *testing.T) {
	t.Parallel()

	want := []string{AbsoluteErrorName, CRPSName, DirectionName, PnLName, SquaredErrorName}
	require.Equal(t, want, BuiltinScorerNames())
	require.Equal(t, want, NewRegistry().Names())
}

func TestRegistryRegister(t *testing.T) {
	t.Parallel()

	double := ScorerFunc(func(_ context.Context, it Item) (map[string]any, error) {
		v, err := finiteField(it.Prediction, "prediction", "value")
		if err != nil {
			return nil, err
		}
		return map[string]any{"value": 2 * v}, nil
	})
	tests := []struct {
		name    string
		reg     string
		scorer  Scorer
		wantErr string
	}{
		{name: "Colon", reg: "my:scorer", scorer: double, wantErr: "looks like a script reference"},
		{name: "DuplicateBuiltin", reg: PnLName, scorer: double, wantErr: "name already registered"},
		{name: "Empty", reg: "", scorer: double, wantErr: "must be non-empty"},
		{name: "NilScorer", reg: "nothing", scorer: nil, wantErr: "scorer is nil"},
		{name: "OK", reg: "double", scorer: double},
		{name: "Spaces", reg: " double", scorer: double, wantErr: "without surrounding spaces"},
		{name: "StarSuffix", reg: "x.star", scorer: double, wantErr: "looks like a script reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := NewRegistry()
			err := reg.Register(tt.reg, tt.scorer)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			s, err := reg.Scorer(tt.reg, script.Options{})
			require.NoError(t, err)
			res := ScoreOne(context.Background(), s, Item{Prediction: map[string]any{"value": 1.5}})
			require.True(t, res.Success, res.FailedReason)
			require.Equal(t, 3.0, res.Value)
			require.ErrorIs(t, reg.Register(tt.reg, tt.scorer), ErrDuplicate)

			// Registries are independent values: nothing leaks into a new one.
			_, ok := NewRegistry().Lookup(tt.reg)
			require.False(t, ok)
		})
	}
}

func TestRegistryScorer(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		ref      string
		wantType any
		wantErr  string
	}{
		{name: "BadRef", ref: "scoring.star", wantErr: "SCORING_FUNCTION: script reference \"scoring.star\""},
		{name: "Builtin", ref: "crps", wantType: CRPS{}},
		{name: "MissingFunction", ref: "testdata/pnl.star:scorer", wantErr: "testdata/pnl.star has no global \"scorer\" (globals: score)"},
		{name: "Script", ref: "testdata/pnl.star:score", wantType: &StarlarkScorer{}},
		{name: "Unknown", ref: "pnl2", wantErr: `unknown scorer "pnl2" (built-in or registered: absolute_error, crps, direction, pnl, squared_error; or path/to/file.star:function)`},
		{name: "WrongArity", ref: "testdata/misbehave.star:wrong_arity", wantErr: "SCORING_FUNCTION: scoring function: testdata/misbehave.star:wrong_arity: testdata/misbehave.star:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := NewRegistry().Scorer(tt.ref, script.Options{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.IsType(t, tt.wantType, s)
		})
	}
}

func TestStarlarkScorerMatchesBuiltinPnL(t *testing.T) {
	t.Parallel()

	s := starlarkScorer(t, "testdata/pnl.star:score", script.Options{})
	require.Equal(t, "testdata/pnl.star:score", s.(*StarlarkScorer).String())
	for _, v := range []float64{-1.5, 0, 0.25, 3} {
		it := Item{GroundTruth: groundTruthFor(100, 97.5), Prediction: map[string]any{"value": v}}
		want := ScoreOne(context.Background(), PnL{}, it)
		got := ScoreOne(context.Background(), s, it)
		require.True(t, got.Success, got.FailedReason)
		require.InDelta(t, want.Value, got.Value, 1e-9)
	}
	zero := ScoreOne(context.Background(), s, Item{GroundTruth: map[string]any{"entry_price": 0.0, "profit": 0.0}, Prediction: map[string]any{"value": 1.0}})
	require.False(t, zero.Success)
	require.Equal(t, "entry price is 0", zero.FailedReason)
}
