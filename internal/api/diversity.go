package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/scoring/ensemble"
	"github.com/crunchnode/crunch-node/jobs"
)

// Diversity feedback and ensemble reports (crunch-node-python.md §7). Every value comes
// from a model's newest overall snapshot, into which the score job merges the window
// metrics; the Python engine read the oldest one.

// DiversityMetrics are the cross-model metrics a diversity report shows; a metric the
// snapshot lacks (not configured, or not computed yet) is 0, as in the Python engine.
type DiversityMetrics struct {
	Contribution        float64 `json:"contribution"`
	EnsembleCorrelation float64 `json:"ensemble_correlation"`
	FNC                 float64 `json:"fnc"`
	IC                  float64 `json:"ic"`
	ModelCorrelation    float64 `json:"model_correlation"`
}

// ModelDiversity is /reports/models/{model_id}/diversity.
type ModelDiversity struct {
	DiversityScore    float64          `json:"diversity_score"     doc:"max(0, 1 − |model_correlation|), 4 decimals."`
	Guidance          []string         `json:"guidance"            doc:"Short hints on how the model could add more to the collective."`
	Metrics           DiversityMetrics `json:"metrics"`
	ModelID           string           `json:"model_id"`
	Rank              *int32           `json:"rank"                doc:"Leaderboard rank; null when unranked."`
	SnapshotPeriodEnd time.Time        `json:"snapshot_period_end"`
}

// DiversityRow is one /reports/diversity entry.
type DiversityRow struct {
	Contribution        float64   `json:"contribution"`
	DiversityScore      float64   `json:"diversity_score"`
	EnsembleCorrelation float64   `json:"ensemble_correlation"`
	FNC                 float64   `json:"fnc"`
	IC                  float64   `json:"ic"`
	ModelCorrelation    float64   `json:"model_correlation"`
	ModelID             string    `json:"model_id"`
	PeriodEnd           naiveTime `json:"period_end"`
}

// EnsembleHistoryRow is one /reports/ensemble/history entry; the snapshot's numeric
// summary fields are flattened to the top level for the Ensemble Performance chart.
type EnsembleHistoryRow struct {
	_               struct{}       `json:"-" additionalProperties:"true"`
	EnsembleName    string         `json:"ensemble_name"`
	ModelID         string         `json:"model_id"`
	PeriodEnd       naiveTime      `json:"period_end"`
	PeriodStart     naiveTime      `json:"period_start"`
	PredictionCount int32          `json:"prediction_count"`
	Flat            map[string]any `json:"-"`
}

// MarshalJSON adds the flattened summary.
func (r EnsembleHistoryRow) MarshalJSON() ([]byte, error) {
	type plain EnsembleHistoryRow
	return marshalFlat(plain(r), r.Flat)
}

// diversityMetricsOf reads the diversity metrics from a snapshot summary.
func diversityMetricsOf(summary map[string]any) DiversityMetrics {
	get := func(k string) float64 {
		if f, ok := summary[k].(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
		return 0
	}
	return DiversityMetrics{
		Contribution: get("contribution"), EnsembleCorrelation: get("ensemble_correlation"),
		FNC: get("fnc"), IC: get("ic"), ModelCorrelation: get("model_correlation"),
	}
}

// diversityScore is max(0, 1 − |model_correlation|) rounded to 4 decimals: 1 for a model
// unlike every other, 0 for one that moves with the consensus.
func diversityScore(modelCorrelation float64) float64 {
	return math.Round(math.Max(0, 1-math.Abs(modelCorrelation))*1e4) / 1e4
}

// diversityGuidance turns the metrics into short hints, most pressing first. The
// thresholds are deliberately coarse: the metrics are noisy over short windows.
func diversityGuidance(m DiversityMetrics) []string {
	var out []string
	switch {
	case math.Abs(m.ModelCorrelation) >= 0.8:
		out = append(out, "Highly correlated with the consensus of the other models: diversify your signal.")
	case math.Abs(m.ModelCorrelation) <= 0.3:
		out = append(out, "Low correlation with the other models: your signal is distinctive.")
	}
	if math.Abs(m.EnsembleCorrelation) >= 0.9 {
		out = append(out, "Very close to the ensemble: you add little information it does not already have.")
	}
	switch {
	case m.Contribution < 0:
		out = append(out, "Negative contribution: the ensemble predicts better without you.")
	case m.Contribution > 0:
		out = append(out, "Positive contribution: the ensemble predicts better with you.")
	}
	switch {
	case m.FNC > 0 && m.FNC >= m.IC:
		out = append(out, "Positive feature-neutral correlation: your unique part predicts outcomes.")
	case m.FNC < 0:
		out = append(out, "Negative feature-neutral correlation: what you add beyond the consensus hurts.")
	}
	if m.IC < 0 {
		out = append(out, "Negative IC: your signal points against the realised outcomes.")
	}
	if len(out) == 0 {
		out = append(out, "No diversity issue detected.")
	}
	return out
}

// ensembleNameOf recovers an ensemble's name from its virtual model id.
func ensembleNameOf(modelID string) string {
	if !ensemble.IsVirtual(modelID) {
		return modelID
	}
	return strings.TrimSuffix(strings.TrimPrefix(modelID, "__ensemble_"), "__")
}

type modelDiversityInput struct {
	ModelID string `path:"model_id"`
}

type modelDiversityOutput struct{ Body ModelDiversity }

type diversityListInput struct {
	Limit int `query:"limit" default:"50" minimum:"1" maximum:"200" doc:"At most this many models, most diverse first."`
}

type ensembleHistoryInput struct {
	EnsembleName string `query:"ensemble_name" doc:"Only this ensemble."`
	Limit        int    `query:"limit"         default:"100" minimum:"1" maximum:"500" doc:"At most this many snapshots, newest first."`
	Since        string `query:"since"         doc:"Only periods ending at or after this time (ISO 8601)."`
	Until        string `query:"until"         doc:"Only periods starting at or before this time (ISO 8601)."`
}

// registerDiversity mounts the diversity and ensemble reports, and the ensemble signals
// when ensembles are configured.
func registerDiversity(api huma.API, deps Deps) {
	huma.Register(api, huma.Operation{
		OperationID: "report-diversity",
		Method:      http.MethodGet,
		Path:        "/reports/diversity",
		Summary:     "Diversity of every model",
		Description: "Per real model, from its newest overall snapshot, most diverse first.",
		Tags:        []string{"Reports"},
	}, func(ctx context.Context, in *diversityListInput) (*listOutput[DiversityRow], error) {
		rows, err := diversityList(ctx, deps, in.Limit)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &listOutput[DiversityRow]{Body: nonNil(rows)}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "report-ensemble-history",
		Method:      http.MethodGet,
		Path:        "/reports/ensemble/history",
		Summary:     "Ensemble snapshots",
		Description: "Overall snapshots of the ensembles (virtual models), newest first.",
		Tags:        []string{"Reports"},
	}, func(ctx context.Context, in *ensembleHistoryInput) (*listOutput[EnsembleHistoryRow], error) {
		rows, err := ensembleHistory(ctx, deps, in)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &listOutput[EnsembleHistoryRow]{Body: nonNil(rows)}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "report-model-diversity",
		Method:      http.MethodGet,
		Path:        "/reports/models/{model_id}/diversity",
		Summary:     "Diversity feedback for one model",
		Description: "From the model's newest overall snapshot (the Python engine used its oldest); 404 when it has none.",
		Tags:        []string{"Reports"},
	}, func(ctx context.Context, in *modelDiversityInput) (*modelDiversityOutput, error) {
		body, err := modelDiversity(ctx, deps, in.ModelID)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &modelDiversityOutput{Body: body}, nil
	})

	if specs, err := jobs.EnabledEnsembles(deps.Config); err == nil && len(specs) > 0 {
		registerSignals(api, deps, specs)
	}
}

func modelDiversity(ctx context.Context, deps Deps, modelID string) (ModelDiversity, error) {
	queries := dbsqlc.New()
	snaps, err := queries.SnapshotLatestOverallList(ctx, deps.Pool, &dbsqlc.SnapshotLatestOverallListParams{
		IncludeVirtual: true, ModelIDs: []string{modelID},
	})
	if err != nil {
		return ModelDiversity{}, fmt.Errorf("reading the snapshot of %s: %w", modelID, err)
	}
	if len(snaps) == 0 {
		return ModelDiversity{}, Public(postgres.ErrNotFound, "no snapshot for model "+modelID)
	}
	summary, err := decodeObject(snaps[0].ResultSummary)
	if err != nil {
		return ModelDiversity{}, fmt.Errorf("snapshot summary of %s: %w", modelID, err)
	}
	board, err := queries.LeaderboardList(ctx, deps.Pool, true)
	if err != nil {
		return ModelDiversity{}, fmt.Errorf("reading the leaderboard: %w", err)
	}
	var rank *int32
	for _, row := range board {
		if row.ModelID == modelID && row.Rank > 0 {
			r := row.Rank
			rank = &r
		}
	}
	m := diversityMetricsOf(summary)
	return ModelDiversity{
		DiversityScore:    diversityScore(m.ModelCorrelation),
		Guidance:          diversityGuidance(m),
		Metrics:           m,
		ModelID:           modelID,
		Rank:              rank,
		SnapshotPeriodEnd: snaps[0].PeriodEnd.UTC(),
	}, nil
}

func diversityList(ctx context.Context, deps Deps, limit int) ([]DiversityRow, error) {
	snaps, err := dbsqlc.New().SnapshotLatestOverallList(ctx, deps.Pool, &dbsqlc.SnapshotLatestOverallListParams{})
	if err != nil {
		return nil, fmt.Errorf("reading the newest snapshots: %w", err)
	}
	rows := make([]DiversityRow, 0, len(snaps))
	for _, sn := range snaps {
		summary, err := decodeObject(sn.ResultSummary)
		if err != nil {
			return nil, fmt.Errorf("snapshot summary of %s: %w", sn.ModelID, err)
		}
		m := diversityMetricsOf(summary)
		rows = append(rows, DiversityRow{
			Contribution: m.Contribution, DiversityScore: diversityScore(m.ModelCorrelation),
			EnsembleCorrelation: m.EnsembleCorrelation, FNC: m.FNC, IC: m.IC,
			ModelCorrelation: m.ModelCorrelation, ModelID: sn.ModelID, PeriodEnd: naiveTime(sn.PeriodEnd),
		})
	}
	sortDiversity(rows)
	return rows[:min(limit, len(rows))], nil
}

// sortDiversity orders rows most diverse first, ties by model id so pages are stable.
func sortDiversity(rows []DiversityRow) {
	slices.SortStableFunc(rows, func(a, b DiversityRow) int {
		if c := cmp.Compare(b.DiversityScore, a.DiversityScore); c != 0 {
			return c
		}
		return strings.Compare(a.ModelID, b.ModelID)
	})
}

func ensembleHistory(ctx context.Context, deps Deps, in *ensembleHistoryInput) ([]EnsembleHistoryRow, error) {
	params := &dbsqlc.SnapshotEnsembleHistoryListParams{MaxRows: int32(in.Limit)}
	if in.EnsembleName != "" {
		id := ensemble.VirtualModelID(in.EnsembleName)
		params.ModelID = &id
	}
	for _, bound := range []struct {
		name  string
		value string
		into  **time.Time
	}{{"since", in.Since, &params.Since}, {"until", in.Until, &params.Until}} {
		if bound.value == "" {
			continue
		}
		t, err := parseTimeParam(bound.name, bound.value)
		if err != nil {
			return nil, err
		}
		*bound.into = &t
	}
	found, err := dbsqlc.New().SnapshotEnsembleHistoryList(ctx, deps.Pool, params)
	if err != nil {
		return nil, fmt.Errorf("listing ensemble snapshots: %w", err)
	}
	rows := make([]EnsembleHistoryRow, 0, len(found))
	for _, sn := range found {
		summary, err := decodeObject(sn.ResultSummary)
		if err != nil {
			return nil, fmt.Errorf("snapshot summary of %s: %w", sn.ModelID, err)
		}
		rows = append(rows, EnsembleHistoryRow{
			EnsembleName: ensembleNameOf(sn.ModelID), Flat: numericFields(summary), ModelID: sn.ModelID,
			PeriodEnd: naiveTime(sn.PeriodEnd), PeriodStart: naiveTime(sn.PeriodStart), PredictionCount: sn.PredictionCount,
		})
	}
	return rows, nil
}

// EnsembleInfo is one /signals/ensemble entry: a configured ensemble and its latest
// snapshot metrics.
type EnsembleInfo struct {
	Filters         []string           `json:"filters"`
	Metrics         map[string]float64 `json:"metrics"          doc:"Numeric fields of the ensemble's newest overall snapshot; empty before it is scored."`
	ModelID         string             `json:"model_id"`
	Name            string             `json:"name"`
	PeriodEnd       *time.Time         `json:"period_end"`
	PredictionCount int32              `json:"prediction_count"`
	Strategy        string             `json:"strategy"`
}

// EnsembleSignal is one combined prediction of an ensemble, with the weights it used.
type EnsembleSignal struct {
	EnsembleName string             `json:"ensemble_name"`
	ModelID      string             `json:"model_id"`
	PerformedAt  time.Time          `json:"performed_at"`
	PredictionID string             `json:"prediction_id"`
	ResolvableAt time.Time          `json:"resolvable_at"`
	ScopeKey     string             `json:"scope_key"`
	ScoreValue   *float64           `json:"score_value"  doc:"The score, once the prediction was scored."`
	SlotAt       time.Time          `json:"slot_at"`
	Status       string             `json:"status"`
	Strategy     string             `json:"strategy"`
	Value        *float64           `json:"value"`
	Weights      map[string]float64 `json:"weights"      doc:"model_id → weight, summing to 1."`
}

type ensembleNameInput struct {
	Name string `path:"name"`
}

type ensembleSignalOutput struct{ Body EnsembleSignal }

type ensembleSignalHistoryInput struct {
	Limit int    `query:"limit" default:"50" minimum:"1" maximum:"500" doc:"At most this many signals, newest first."`
	Name  string `path:"name"`
	Since string `query:"since" doc:"Only signals performed at or after this time (ISO 8601)."`
}

// registerSignals mounts the ensemble signal endpoints (the Python scaffold's disabled
// /signals router), only for configured, enabled ensembles.
func registerSignals(api huma.API, deps Deps, specs []ensemble.Spec) {
	byName := make(map[string]ensemble.Spec, len(specs))
	for _, s := range specs {
		byName[s.Name] = s
	}
	lookup := func(name string) (ensemble.Spec, error) {
		s, ok := byName[name]
		if !ok {
			return s, Public(postgres.ErrNotFound, "no ensemble "+name)
		}
		return s, nil
	}

	huma.Register(api, huma.Operation{
		OperationID: "signals-ensemble-list",
		Method:      http.MethodGet,
		Path:        "/signals/ensemble",
		Summary:     "Configured ensembles",
		Description: "Every enabled ensemble with the metrics of its newest overall snapshot.",
		Tags:        []string{"Signals"},
	}, func(ctx context.Context, _ *struct{}) (*listOutput[EnsembleInfo], error) {
		ids := make([]string, 0, len(specs))
		for _, s := range specs {
			ids = append(ids, s.ModelID())
		}
		snaps, err := dbsqlc.New().SnapshotLatestOverallList(ctx, deps.Pool, &dbsqlc.SnapshotLatestOverallListParams{
			IncludeVirtual: true, ModelIDs: ids,
		})
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, fmt.Errorf("reading ensemble snapshots: %w", err))
		}
		latest := make(map[string]*dbsqlc.SnapshotLatestOverallListRow, len(snaps))
		for _, sn := range snaps {
			latest[sn.ModelID] = sn
		}
		out := make([]EnsembleInfo, 0, len(specs))
		for _, s := range specs {
			info := EnsembleInfo{
				Filters: nonNil(filterStrings(s)), Metrics: map[string]float64{}, ModelID: s.ModelID(),
				Name: s.Name, Strategy: s.Strategy.Name(),
			}
			if sn := latest[s.ModelID()]; sn != nil {
				summary, err := decodeObject(sn.ResultSummary)
				if err != nil {
					return nil, toHTTPError(ctx, deps.Logger, fmt.Errorf("snapshot summary of %s: %w", sn.ModelID, err))
				}
				for k, v := range numericFields(summary) {
					info.Metrics[k] = v.(float64)
				}
				end := sn.PeriodEnd.UTC()
				info.PeriodEnd, info.PredictionCount = &end, sn.PredictionCount
			}
			out = append(out, info)
		}
		return &listOutput[EnsembleInfo]{Body: out}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "signals-ensemble-latest",
		Method:      http.MethodGet,
		Path:        "/signals/ensemble/{name}",
		Summary:     "Latest ensemble signal",
		Description: "The ensemble's newest combined prediction with its weights; 404 for an unknown ensemble or before its first prediction.",
		Tags:        []string{"Signals"},
	}, func(ctx context.Context, in *ensembleNameInput) (*ensembleSignalOutput, error) {
		spec, err := lookup(in.Name)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		signals, err := ensembleSignals(ctx, deps, spec, 1, nil)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		if len(signals) == 0 {
			return nil, toHTTPError(ctx, deps.Logger, Public(postgres.ErrNotFound, "ensemble "+in.Name+" has no prediction yet"))
		}
		return &ensembleSignalOutput{Body: signals[0]}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "signals-ensemble-history",
		Method:      http.MethodGet,
		Path:        "/signals/ensemble/{name}/history",
		Summary:     "Ensemble signal history",
		Description: "The ensemble's combined predictions, newest first.",
		Tags:        []string{"Signals"},
	}, func(ctx context.Context, in *ensembleSignalHistoryInput) (*listOutput[EnsembleSignal], error) {
		spec, err := lookup(in.Name)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		var since *time.Time
		if in.Since != "" {
			t, err := parseTimeParam("since", in.Since)
			if err != nil {
				return nil, toHTTPError(ctx, deps.Logger, err)
			}
			since = &t
		}
		signals, err := ensembleSignals(ctx, deps, spec, in.Limit, since)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &listOutput[EnsembleSignal]{Body: nonNil(signals)}, nil
	})
}

func filterStrings(spec ensemble.Spec) []string {
	out := make([]string, 0, len(spec.Filters))
	for _, f := range spec.Filters {
		out = append(out, f.String())
	}
	return out
}

func ensembleSignals(ctx context.Context, deps Deps, spec ensemble.Spec, limit int, since *time.Time) ([]EnsembleSignal, error) {
	rows, err := dbsqlc.New().PredictionListForModel(ctx, deps.Pool, &dbsqlc.PredictionListForModelParams{
		MaxRows: int32(limit), ModelID: spec.ModelID(), Since: since,
	})
	if err != nil {
		return nil, fmt.Errorf("listing the predictions of ensemble %s: %w", spec.Name, err)
	}
	out := make([]EnsembleSignal, 0, len(rows))
	for _, r := range rows {
		var output struct {
			Value *float64 `json:"value"`
		}
		_ = json.Unmarshal(r.InferenceOutput, &output)
		var meta struct {
			Strategy string             `json:"strategy"`
			Weights  map[string]float64 `json:"weights"`
		}
		_ = json.Unmarshal(r.Meta, &meta)
		if meta.Weights == nil {
			meta.Weights = map[string]float64{}
		}
		out = append(out, EnsembleSignal{
			EnsembleName: spec.Name, ModelID: spec.ModelID(), PerformedAt: r.PerformedAt.UTC(),
			PredictionID: r.ID, ResolvableAt: r.ResolvableAt.UTC(), ScopeKey: r.ScopeKey, ScoreValue: r.ScoreValue,
			SlotAt: r.SlotAt.UTC(), Status: r.Status, Strategy: meta.Strategy, Value: output.Value, Weights: meta.Weights,
		})
	}
	return out, nil
}
