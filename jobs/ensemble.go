package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/predict"
	"github.com/crunchnode/crunch-node/internal/scoring/ensemble"
)

// Ensembles are virtual models: a models row with virtual = true per configured ensemble,
// whose combined prediction is stored at the end of every predict tick as an ordinary
// PENDING prediction of the same slot, scope, input and horizon as the real ones it
// combines. The score job therefore scores it against the same feed ground truth as the
// real predictions (the Python engine scored it against the input), and its snapshots,
// leaderboard row and metrics come from the ordinary paths.

const (
	// ensembleSignalLookback and ensembleSignalsPerModel bound the recent outputs
	// inverse_variance weighs each model by.
	ensembleSignalLookback  = 24 * time.Hour
	ensembleSignalsPerModel = 200
)

// EnabledEnsembles parses the configured ensembles that are enabled (enabled is true or
// absent), in configuration order. An invalid one is an error: the filters are only
// checked here, and a start-up error beats an ensemble that silently never runs.
func EnabledEnsembles(cfg *config.Config) ([]ensemble.Spec, error) {
	if cfg == nil || cfg.Crunch == nil {
		return nil, nil
	}
	specs := make([]ensemble.Spec, 0, len(cfg.Crunch.Ensembles))
	for i, e := range cfg.Crunch.Ensembles {
		if e.Enabled != nil && !*e.Enabled {
			continue
		}
		spec, err := ensemble.ParseSpec(e.Name, e.Strategy, e.Filters)
		if err != nil {
			return nil, fmt.Errorf("ensembles[%d]: %w", i, err)
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// syncEnsembles creates or updates the virtual model of every enabled ensemble and marks
// the virtual models of removed or disabled ones STOPPED (their history stays).
func syncEnsembles(ctx context.Context, tx pgx.Tx, cfg *config.Config) error {
	specs, err := EnabledEnsembles(cfg)
	if err != nil {
		return err
	}
	queries := dbsqlc.New()
	keep := make([]string, 0, len(specs))
	for _, spec := range specs {
		meta, err := json.Marshal(map[string]any{"ensemble_name": spec.Name, "strategy": spec.Strategy.Name(), "filters": filterStrings(spec)})
		if err != nil {
			return fmt.Errorf("encoding ensemble %s: %w", spec.Name, err)
		}
		if _, err := queries.ModelUpsert(ctx, tx, &dbsqlc.ModelUpsertParams{
			ID: spec.ModelID(), Meta: meta, Name: spec.Name, PlayerName: "ensemble",
			State: "RUNNING", Virtual: true,
		}); err != nil {
			return fmt.Errorf("synchronising ensemble model %s: %w", spec.ModelID(), err)
		}
		keep = append(keep, spec.ModelID())
	}
	slices.Sort(keep)
	if _, err := queries.EnsembleModelStopExcept(ctx, tx, &dbsqlc.EnsembleModelStopExceptParams{KeepIDs: keep}); err != nil {
		return fmt.Errorf("stopping removed ensembles: %w", err)
	}
	return nil
}

func filterStrings(spec ensemble.Spec) []string {
	out := make([]string, 0, len(spec.Filters))
	for _, f := range spec.Filters {
		out = append(out, f.String())
	}
	return out
}

// tickValues returns the numeric `value` of every PENDING outcome of a tick, in order:
// the only predictions an ensemble combines.
func tickValues(outcomes []predict.Outcome) []ensemble.Prediction {
	var out []ensemble.Prediction
	for _, o := range outcomes {
		if o.Status != predict.StatusPending || ensemble.IsVirtual(o.ModelID) {
			continue
		}
		if v, ok := numberOf(o.Output["value"]); ok {
			out = append(out, ensemble.Prediction{ModelID: o.ModelID, Value: v})
		}
	}
	return out
}

// numberOf reads a finite JSON number.
func numberOf(v any) (float64, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case json.Number:
		parsed, err := x.Float64()
		if err != nil {
			return 0, false
		}
		f = parsed
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// ensembleRows computes every ensemble's combined prediction for one tick: the weights
// from the candidates (the models that answered), the weighted mean of their values. An
// ensemble without candidates is left out; its error says why.
func ensembleRows(specs []ensemble.Spec, cands []ensemble.Candidate, values []ensemble.Prediction, key string) ([]ensembleRow, []error) {
	var (
		rows []ensembleRow
		errs []error
	)
	for i := range values {
		values[i].Key = key
	}
	for _, spec := range specs {
		weights, err := spec.Weights(cands)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		combined, ok := ensemble.Combine(weights, values)[key]
		if !ok {
			errs = append(errs, fmt.Errorf("ensemble %q: %w", spec.Name, ensemble.ErrNoCandidates))
			continue
		}
		rows = append(rows, ensembleRow{spec: spec, value: combined, weights: weights})
	}
	return rows, errs
}

type ensembleRow struct {
	spec    ensemble.Spec
	value   float64
	weights map[string]float64
}

// storeEnsembles adds the tick's ensemble predictions to its transaction, in a savepoint:
// an ensemble problem is logged and never fails or rolls back the tick's real predictions.
func (w *PredictWorker) storeEnsembles(ctx context.Context, tx pgx.Tx, tick *dbsqlc.PredictionInsertManyParams, outcomes []predict.Outcome) {
	if len(w.deps.Config.Crunch.Ensembles) == 0 {
		return
	}
	logger := w.deps.Logger
	specs, err := EnabledEnsembles(w.deps.Config)
	if err != nil {
		logger.ErrorContext(ctx, "Predict: ensembles misconfigured", slog.String("error", err.Error()))
		return
	}
	values := tickValues(outcomes)
	if len(specs) == 0 || len(values) == 0 {
		return
	}
	stored, err := postgres.WithTxV(ctx, tx, func(ctx context.Context, sp pgx.Tx) (int64, error) {
		cands, err := ensembleCandidates(ctx, sp, values, tick.PerformedAt)
		if err != nil {
			return 0, err
		}
		rows, errs := ensembleRows(specs, cands, values, tick.ScopeKey)
		for _, e := range errs {
			logger.DebugContext(ctx, "Predict: ensemble skipped", slog.String("scope_key", tick.ScopeKey), slog.String("reason", e.Error()))
		}
		if len(rows) == 0 {
			return 0, nil
		}
		params := *tick
		params.ExecTimeMs, params.FailedReasons, params.IDs, params.InferenceOutputs = nil, nil, nil, nil
		params.Metas, params.ModelIDs, params.Statuses = nil, nil, nil
		for _, r := range rows {
			output, err := json.Marshal(map[string]any{"value": r.value})
			if err != nil {
				return 0, fmt.Errorf("encoding ensemble %s: %w", r.spec.Name, err)
			}
			meta, err := json.Marshal(map[string]any{
				"ensemble_name": r.spec.Name, "strategy": r.spec.Strategy.Name(), "weights": r.weights,
			})
			if err != nil {
				return 0, fmt.Errorf("encoding ensemble %s weights: %w", r.spec.Name, err)
			}
			params.ExecTimeMs = append(params.ExecTimeMs, 0)
			params.FailedReasons = append(params.FailedReasons, "")
			params.IDs = append(params.IDs, predict.PredictionID(predict.StatusPending, r.spec.ModelID(), tick.ScopeKey, tick.SlotAt))
			params.InferenceOutputs = append(params.InferenceOutputs, output)
			params.Metas = append(params.Metas, meta)
			params.ModelIDs = append(params.ModelIDs, r.spec.ModelID())
			params.Statuses = append(params.Statuses, predict.StatusPending)
		}
		n, err := dbsqlc.New().PredictionInsertMany(ctx, sp, &params)
		if err != nil {
			return 0, fmt.Errorf("storing %d ensemble predictions: %w", len(params.IDs), err)
		}
		return n, nil
	})
	if err != nil {
		logger.ErrorContext(ctx, "Predict: ensembles not stored", slog.String("scope_key", tick.ScopeKey), slog.String("error", err.Error()))
		return
	}
	if stored > 0 {
		w.deps.Metrics.Predictions.WithLabelValues(predict.StatusPending).Add(float64(stored))
	}
}

// ensembleCandidates describes the models that answered this tick: their newest overall
// snapshot's numeric fields (what the filters read) and their recent values (what
// inverse_variance weighs).
func ensembleCandidates(ctx context.Context, db dbsqlc.DBTX, values []ensemble.Prediction, now time.Time) ([]ensemble.Candidate, error) {
	ids := make([]string, 0, len(values))
	for _, v := range values {
		if !slices.Contains(ids, v.ModelID) {
			ids = append(ids, v.ModelID)
		}
	}
	queries := dbsqlc.New()
	snaps, err := queries.SnapshotLatestOverallList(ctx, db, &dbsqlc.SnapshotLatestOverallListParams{ModelIDs: ids})
	if err != nil {
		return nil, fmt.Errorf("reading candidate metrics: %w", err)
	}
	metrics := make(map[string]map[string]float64, len(snaps))
	for _, s := range snaps {
		metrics[s.ModelID] = numericSummary(s.ResultSummary)
	}
	recent, err := queries.PredictionRecentValueList(ctx, db, &dbsqlc.PredictionRecentValueListParams{
		ModelIDs: ids, PerModel: ensembleSignalsPerModel, Since: now.Add(-ensembleSignalLookback),
	})
	if err != nil {
		return nil, fmt.Errorf("reading candidate signals: %w", err)
	}
	signals := make(map[string][]float64, len(ids))
	for _, r := range recent {
		signals[r.ModelID] = append(signals[r.ModelID], r.Value)
	}
	cands := make([]ensemble.Candidate, 0, len(ids))
	for _, id := range ids {
		cands = append(cands, ensemble.Candidate{Metrics: metrics[id], ModelID: id, Signals: signals[id]})
	}
	return cands, nil
}

// numericSummary keeps the finite numeric fields of a snapshot summary.
func numericSummary(raw json.RawMessage) map[string]float64 {
	var summary map[string]any
	_ = json.Unmarshal(raw, &summary)
	out := make(map[string]float64, len(summary))
	for k, v := range summary {
		if f, ok := numberOf(v); ok {
			out[k] = f
		}
	}
	return out
}

// referenceEnsemble is the virtual model whose points the cross-model metrics
// (ensemble_correlation, contribution, fnc) compare with: the first enabled ensemble, as
// in the Python engine.
func referenceEnsemble(cfg *config.Config) (string, bool) {
	specs, err := EnabledEnsembles(cfg)
	if err != nil || len(specs) == 0 {
		return "", false
	}
	return specs[0].ModelID(), true
}
