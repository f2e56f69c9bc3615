package jobs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/predict"
	"github.com/crunchnode/crunch-node/internal/scoring/ensemble"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

func TestEnabledEnsembles(t *testing.T) {
	t.Parallel()
	off := false
	for _, tc := range []struct {
		name      string
		ensembles []config.Ensemble
		want      []string
		wantErr   bool
	}{
		{"DisabledSkipped", []config.Ensemble{{Name: "a"}, {Name: "b", Enabled: &off}, {Name: "c", Strategy: "equal_weight"}}, []string{"a", "c"}, false},
		{"InvalidFilter", []config.Ensemble{{Name: "a", Filters: []string{"top_n(zero)"}}}, nil, true},
		{"None", nil, []string{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			specs, err := EnabledEnsembles(&config.Config{Crunch: &config.CrunchConfig{Ensembles: tc.ensembles}})
			if tc.wantErr {
				require.ErrorIs(t, err, ensemble.ErrInvalidSpec)
				return
			}
			require.NoError(t, err)
			names := []string{}
			for _, s := range specs {
				names = append(names, s.Name)
			}
			require.Equal(t, tc.want, names)
		})
	}
}

func TestTickValues(t *testing.T) {
	t.Parallel()
	got := tickValues([]predict.Outcome{
		{ModelID: "a", Status: predict.StatusPending, Output: map[string]any{"value": 0.25}},
		{ModelID: "b", Status: predict.StatusFailed, Output: map[string]any{"value": 1.0}},
		{ModelID: "c", Status: predict.StatusPending, Output: map[string]any{"value": "high"}},
		{ModelID: "d", Status: predict.StatusPending, Output: map[string]any{"value": json.Number("-2")}},
		{ModelID: ensemble.VirtualModelID("x"), Status: predict.StatusPending, Output: map[string]any{"value": 3.0}},
		{ModelID: "e", Status: predict.StatusAbsent, Output: map[string]any{}},
	})
	require.Equal(t, []ensemble.Prediction{{ModelID: "a", Value: 0.25}, {ModelID: "d", Value: -2}}, got)
}

func TestEnsembleRows(t *testing.T) {
	t.Parallel()
	equal, err := ensemble.ParseSpec("eq", "equal_weight", nil)
	require.NoError(t, err)
	best, err := ensemble.ParseSpec("best", "equal_weight", []string{"top_n(1, ic)"})
	require.NoError(t, err)
	picky, err := ensemble.ParseSpec("picky", "", []string{"min_metric(ic, 0.9)"})
	require.NoError(t, err)
	cands := []ensemble.Candidate{
		{ModelID: "a", Metrics: map[string]float64{"ic": 0.1}},
		{ModelID: "b", Metrics: map[string]float64{"ic": 0.3}},
	}
	values := []ensemble.Prediction{{ModelID: "a", Value: 1}, {ModelID: "b", Value: 3}}

	rows, errs := ensembleRows([]ensemble.Spec{equal, best, picky}, cands, values, "k")
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], ensemble.ErrNoCandidates, "no model reaches ic 0.9")
	require.Len(t, rows, 2)
	require.Equal(t, "eq", rows[0].spec.Name)
	require.InDelta(t, 2, rows[0].value, 1e-12)
	require.Equal(t, map[string]float64{"a": 0.5, "b": 0.5}, rows[0].weights)
	require.Equal(t, "best", rows[1].spec.Name)
	require.InDelta(t, 3, rows[1].value, 1e-12, "only the top model by ic")
}

func TestSyncEnsembles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := feedConfig(t, nil)
	cfg.Crunch.Ensembles = []config.Ensemble{{Name: "old"}}
	b := setupRiver(t, cfg, nil)

	cfg.Crunch.Ensembles = []config.Ensemble{{Name: "new", Strategy: "equal_weight"}}
	require.NoError(t, SyncConfig(ctx, b.pool, cfg, b.deps.Logger))
	models, err := dbsqlc.New().ModelList(ctx, b.pool, true)
	require.NoError(t, err)
	states := map[string]string{}
	for _, m := range models {
		require.True(t, m.Virtual)
		states[m.ID] = m.State
	}
	require.Equal(t, map[string]string{
		ensemble.VirtualModelID("new"): "RUNNING",
		ensemble.VirtualModelID("old"): "STOPPED",
	}, states)
}

// TestEnsembleErrorKeepsTick: an ensemble that cannot be stored (here a trigger refuses
// every prediction but the real model's) is logged and never costs the tick its real
// predictions.
func TestEnsembleErrorKeepsTick(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	models := []modelrunner.ModelInfo{startHost(t, "m-momentum", "momentum", modelhost.Faults{})}
	cfg := feedConfig(t, map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"})
	cfg.Crunch.Ensembles = []config.Ensemble{{Name: "main"}}
	b := setupRiver(t, cfg, func(d *Deps) { d.Predicting = newPredicting(t, models) })
	require.NoError(t, MirrorModels(ctx, b.pool, models))
	_, err := b.pool.Exec(ctx, `
CREATE FUNCTION refuse_ensembles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.model_id <> 'm-momentum' THEN
        RAISE EXCEPTION 'ensemble refused by the test';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_ensembles BEFORE INSERT ON predictions FOR EACH ROW EXECUTE FUNCTION refuse_ensembles();`)
	require.NoError(t, err)

	now := time.Now().UTC().Truncate(time.Second)
	closes := make([]float64, 100)
	for i := range closes {
		closes[i] = 100 + float64(i%5)
	}
	testfactory.FeedCandles(ctx, t, b.pool, [4]string{}, now.Add(-100*time.Second), time.Second, closes)
	schedules, err := dbsqlc.New().ScheduleListActive(ctx, b.pool)
	require.NoError(t, err)

	event := b.runJob(t, PredictArgs{ConfigID: schedules[0].ID, SlotAt: slotOf(now, 15*time.Second)})
	require.Equal(t, river.EventKindJobCompleted, event.Kind)
	var real, virtual int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE model_id = 'm-momentum'), count(*) FILTER (WHERE model_id <> 'm-momentum') FROM predictions").Scan(&real, &virtual))
	require.Equal(t, 1, real)
	require.Zero(t, virtual)
}
