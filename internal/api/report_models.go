package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jackc/pgx/v5"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// seriesRowCap bounds the snapshots one /reports/models/metrics answer reads; a month of
// hourly snapshots of 100 models is 72,000.
const seriesRowCap = 200_000

// ModelRow is one /reports/models entry. The UI joins leaderboard and chart rows on
// model_id and labels them cruncher_name/model_name.
type ModelRow struct {
	CruncherID   string `json:"cruncher_id"`
	CruncherName string `json:"cruncher_name"`
	DeploymentID string `json:"deployment_id"`
	ModelID      string `json:"model_id"`
	ModelName    string `json:"model_name"`
}

// ModelScoreRow is one /reports/models/global row: a model's window values over its scores
// in the range, merged with the numeric fields of its latest snapshot, both nested and
// flattened to the top level for the charts.
type ModelScoreRow struct {
	_            struct{}           `json:"-" additionalProperties:"true"`
	ModelID      string             `json:"model_id"`
	PerformedAt  naiveTime          `json:"performed_at"  doc:"The newest scored prediction in the range."`
	ScoreMetrics map[string]float64 `json:"score_metrics"`
	ScoreRanking ScoreRanking       `json:"score_ranking"`
	Flat         map[string]any     `json:"-"`
}

// MarshalJSON adds the flattened metrics.
func (r ModelScoreRow) MarshalJSON() ([]byte, error) {
	type plain ModelScoreRow
	return marshalFlat(plain(r), r.Flat)
}

// ModelParamsRow is one /reports/models/params row: ModelScoreRow per model and scope, with
// the scope's fields flattened too so the UI's subject/horizon filters and its group-by on
// param find them (the Python engine left them inside scope, so those filters saw nothing).
type ModelParamsRow struct {
	_            struct{}           `json:"-" additionalProperties:"true"`
	Horizon      *int32             `json:"horizon"       doc:"resolve_horizon_seconds of the scope's schedule."`
	ModelID      string             `json:"model_id"`
	Param        string             `json:"param"         doc:"The scope_key."`
	PerformedAt  naiveTime          `json:"performed_at"`
	Scope        jsonObject         `json:"scope"`
	ScopeKey     string             `json:"scope_key"`
	ScoreMetrics map[string]float64 `json:"score_metrics"`
	ScoreRanking ScoreRanking       `json:"score_ranking"`
	Flat         map[string]any     `json:"-"`
}

// MarshalJSON adds the flattened metrics and scope fields.
func (r ModelParamsRow) MarshalJSON() ([]byte, error) {
	type plain ModelParamsRow
	return marshalFlat(plain(r), r.Flat)
}

// ModelMetricsRow is one /reports/models/metrics point: one overall snapshot with its
// numeric summary flattened, plus each window's value as of the snapshot (the
// prediction-weighted mean of value_field over the model's snapshots ending within the
// window before it, the leaderboard's definition) so the Score Metrics chart, whose series
// are the window names, has something to draw.
type ModelMetricsRow struct {
	_               struct{}       `json:"-" additionalProperties:"true"`
	ModelID         string         `json:"model_id"`
	PerformedAt     naiveTime      `json:"performed_at"     doc:"End of the snapshot's period, or its last update while the period is open."`
	PredictionCount int32          `json:"prediction_count"`
	Flat            map[string]any `json:"-"`
}

// MarshalJSON adds the flattened summary and windows.
func (r ModelMetricsRow) MarshalJSON() ([]byte, error) {
	type plain ModelMetricsRow
	return marshalFlat(plain(r), r.Flat)
}

// ModelSummaryRow is one /reports/models/summary row: the numeric fields of the model's
// latest snapshot in the range.
type ModelSummaryRow struct {
	_       struct{}       `json:"-" additionalProperties:"true"`
	ModelID string         `json:"model_id"`
	Flat    map[string]any `json:"-"`
}

// MarshalJSON adds the flattened summary.
func (r ModelSummaryRow) MarshalJSON() ([]byte, error) {
	type plain ModelSummaryRow
	return marshalFlat(plain(r), r.Flat)
}

type modelsInput struct {
	IncludeEnsembles bool `query:"include_ensembles" doc:"Include ensembles (virtual models), hidden by default."`
}

type rangeInput struct {
	RangeParams
}

type listOutput[T any] struct {
	Body []T
}

func (r *reports) registerModels(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "report-models",
		Method:      http.MethodGet,
		Path:        "/reports/models",
		Summary:     "Models",
		Tags:        []string{"Reports"},
	}, func(ctx context.Context, in *modelsInput) (*listOutput[ModelRow], error) {
		models, err := dbsqlc.New().ModelList(ctx, r.deps.Pool, in.IncludeEnsembles)
		if err != nil {
			return nil, toHTTPError(ctx, r.deps.Logger, fmt.Errorf("listing models: %w", err))
		}
		rows := make([]ModelRow, 0, len(models))
		for _, m := range models {
			rows = append(rows, ModelRow{
				CruncherID:   m.PlayerID,
				CruncherName: m.PlayerName,
				DeploymentID: m.DeploymentIdentifier,
				ModelID:      m.ID,
				ModelName:    m.Name,
			})
		}
		return &listOutput[ModelRow]{Body: rows}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "report-models-global",
		Method:      http.MethodGet,
		Path:        "/reports/models/global",
		Summary:     "Window scores per model",
		Description: "Per model with a successful score in [start, end]: the mean score of each aggregation window " +
			"(scores performed within the window before now), merged with the latest snapshot's numeric fields.",
		Tags: []string{"Reports"},
	}, rangeList(r, r.modelsGlobal))

	huma.Register(api, huma.Operation{
		OperationID: "report-models-params",
		Method:      http.MethodGet,
		Path:        "/reports/models/params",
		Summary:     "Window scores per model and scope",
		Tags:        []string{"Reports"},
	}, rangeList(r, r.modelsParams))

	huma.Register(api, huma.Operation{
		OperationID: "report-models-metrics",
		Method:      http.MethodGet,
		Path:        "/reports/models/metrics",
		Summary:     "Snapshot metrics over time",
		Description: "One row per overall snapshot in [start, end], sorted by performed_at.",
		Tags:        []string{"Reports"},
	}, rangeList(r, r.modelsMetrics))

	huma.Register(api, huma.Operation{
		OperationID: "report-models-summary",
		Method:      http.MethodGet,
		Path:        "/reports/models/summary",
		Summary:     "Latest snapshot metrics per model",
		Tags:        []string{"Reports"},
	}, rangeList(r, r.modelsSummary))
}

// windowGroup is one (model, scope) group of window scores.
type windowGroup struct {
	lastPerformedAt time.Time
	metrics         map[string]float64
	modelID         string
	scopeKey        string
}

// scoreWindows computes each window's mean score per model (and scope): the Python
// engine's plain mean of the successful score values performed within the window before
// now, restricted to the range; 0 for a window without scores. ScoreWindowBucketList
// returns the scores bucketed by how many windows contain them; a window of rank k by
// length (1 = longest) contains the buckets that are in at least k windows.
func (r *reports) scoreWindows(ctx context.Context, tr timeRange, byScope bool) ([]*windowGroup, error) {
	windows := slices.Clone(r.crunch.Aggregation.Windows)
	slices.SortStableFunc(windows, func(a, b config.Window) int { return cmp.Compare(b.Duration, a.Duration) })
	thresholds := make([]float64, len(windows))
	for i, w := range windows {
		thresholds[i] = -w.Duration.D().Seconds()
	}
	now := r.now()
	rows, err := dbsqlc.New().ScoreWindowBucketList(ctx, r.deps.Pool, &dbsqlc.ScoreWindowBucketListParams{
		ByScope:        byScope,
		EndTS:          tr.End,
		IncludeVirtual: tr.IncludeEnsembles,
		ModelIDs:       tr.ModelIDs,
		Now:            &now,
		StartTS:        tr.Start,
		Thresholds:     thresholds,
	})
	if err != nil {
		return nil, fmt.Errorf("computing window scores: %w", err)
	}
	var groups []*windowGroup
	sums := make([]float64, len(windows)+1)
	counts := make([]int64, len(windows)+1)
	flush := func() {
		g := groups[len(groups)-1]
		var sum float64
		var count int64
		for k := len(windows); k >= 1; k-- { // from the shortest window to the longest
			sum, count = sum+sums[k], count+counts[k]
			g.metrics[windows[k-1].Name] = 0
			if count > 0 {
				g.metrics[windows[k-1].Name] = sum / float64(count)
			}
		}
		clear(sums)
		clear(counts)
	}
	for _, row := range rows {
		if n := len(groups); n == 0 || groups[n-1].modelID != row.ModelID || groups[n-1].scopeKey != row.ScopeKey {
			if n > 0 {
				flush()
			}
			groups = append(groups, &windowGroup{metrics: map[string]float64{}, modelID: row.ModelID, scopeKey: row.ScopeKey})
		}
		g := groups[len(groups)-1]
		if row.LastPerformedAt.After(g.lastPerformedAt) {
			g.lastPerformedAt = row.LastPerformedAt
		}
		in := min(max(int(row.WindowsIn), 0), len(windows))
		sums[in] += row.ValueSum
		counts[in] += row.ScoreCount
	}
	if len(groups) > 0 {
		flush()
	}
	return groups, nil
}

// latestSummaries maps (model, scope_key) to the numeric fields of the latest snapshot.
func (r *reports) latestSummaries(ctx context.Context, tr timeRange, byScope bool) (map[[2]string]map[string]any, error) {
	rows, err := dbsqlc.New().SnapshotLatestList(ctx, r.deps.Pool, &dbsqlc.SnapshotLatestListParams{
		ByScope:        byScope,
		EndTS:          tr.End,
		IncludeVirtual: tr.IncludeEnsembles,
		ModelIDs:       tr.ModelIDs,
		StartTS:        tr.Start,
	})
	if err != nil {
		return nil, fmt.Errorf("listing latest snapshots: %w", err)
	}
	out := make(map[[2]string]map[string]any, len(rows))
	for _, row := range rows {
		summary, err := decodeObject(row.ResultSummary)
		if err != nil {
			return nil, fmt.Errorf("snapshot summary of %s: %w", row.ModelID, err)
		}
		out[[2]string{row.ModelID, row.ScopeKey}] = numericFields(summary)
	}
	return out, nil
}

// scoreMetrics merges a group's windows with its snapshot fields (windows win, as in the
// Python engine) and builds the ranking and the flattened keys.
func (r *reports) scoreMetrics(g *windowGroup, summary map[string]any) (map[string]float64, ScoreRanking, map[string]any) {
	metrics := make(map[string]float64, len(g.metrics)+len(summary))
	for k, v := range summary {
		metrics[k] = v.(float64)
	}
	for k, v := range g.metrics {
		metrics[k] = v
	}
	agg := r.crunch.Aggregation
	ranking := ScoreRanking{Direction: agg.RankingDirection, Key: agg.RankingKey}
	if v, ok := metrics[agg.RankingKey]; ok {
		ranking.Value = &v
	}
	flat := make(map[string]any, len(metrics))
	for k, v := range metrics {
		flat[k] = v
	}
	return metrics, ranking, flat
}

func (r *reports) modelsGlobal(ctx context.Context, params *RangeParams) ([]ModelScoreRow, error) {
	tr, err := params.resolve(r.now())
	if err != nil {
		return nil, err
	}
	groups, err := r.scoreWindows(ctx, tr, false)
	if err != nil {
		return nil, err
	}
	summaries, err := r.latestSummaries(ctx, tr, false)
	if err != nil {
		return nil, err
	}
	rows := make([]ModelScoreRow, 0, len(groups))
	for _, g := range groups {
		metrics, ranking, flat := r.scoreMetrics(g, summaries[[2]string{g.modelID, ""}])
		rows = append(rows, ModelScoreRow{
			Flat:         flat,
			ModelID:      g.modelID,
			PerformedAt:  naiveTime(g.lastPerformedAt),
			ScoreMetrics: metrics,
			ScoreRanking: ranking,
		})
	}
	return rows, nil
}

func (r *reports) modelsParams(ctx context.Context, params *RangeParams) ([]ModelParamsRow, error) {
	tr, err := params.resolve(r.now())
	if err != nil {
		return nil, err
	}
	groups, err := r.scoreWindows(ctx, tr, true)
	if err != nil {
		return nil, err
	}
	summaries, err := r.latestSummaries(ctx, tr, true)
	if err != nil {
		return nil, err
	}
	horizons, err := r.scheduleHorizons(ctx)
	if err != nil {
		return nil, err
	}
	queries := dbsqlc.New()
	rows := make([]ModelParamsRow, 0, len(groups))
	for _, g := range groups {
		scope, err := queries.PredictionScopeLatestGet(ctx, r.deps.Pool, &dbsqlc.PredictionScopeLatestGetParams{
			EndTS: tr.End, ModelID: g.modelID, ScopeKey: g.scopeKey,
		})
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("reading the scope of %s/%s: %w", g.modelID, g.scopeKey, err)
		}
		scopeFields, err := decodeObject(scope)
		if err != nil {
			return nil, fmt.Errorf("scope of %s/%s: %w", g.modelID, g.scopeKey, err)
		}
		metrics, ranking, flat := r.scoreMetrics(g, summaries[[2]string{g.modelID, g.scopeKey}])
		for k, v := range scalarFields(scopeFields) {
			if _, taken := flat[k]; !taken {
				flat[k] = v
			}
		}
		row := ModelParamsRow{
			Flat:         flat,
			ModelID:      g.modelID,
			Param:        g.scopeKey,
			PerformedAt:  naiveTime(g.lastPerformedAt),
			Scope:        jsonObject(scope),
			ScopeKey:     g.scopeKey,
			ScoreMetrics: metrics,
			ScoreRanking: ranking,
		}
		if h, ok := horizons[g.scopeKey]; ok {
			row.Horizon = &h
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// scheduleHorizons maps scope_key to its schedule's resolve_horizon_seconds.
func (r *reports) scheduleHorizons(ctx context.Context) (map[string]int32, error) {
	schedules, err := dbsqlc.New().ScheduleListForReport(ctx, r.deps.Pool)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	out := make(map[string]int32, len(schedules))
	for _, s := range schedules {
		out[s.ScopeKey] = s.ResolveHorizonSeconds
	}
	return out, nil
}

func (r *reports) modelsMetrics(ctx context.Context, params *RangeParams) ([]ModelMetricsRow, error) {
	tr, err := params.resolve(r.now())
	if err != nil {
		return nil, err
	}
	agg := r.crunch.Aggregation
	var longest time.Duration
	for _, w := range agg.Windows {
		longest = max(longest, w.Duration.D())
	}
	snapshots, err := dbsqlc.New().SnapshotListForSeries(ctx, r.deps.Pool, &dbsqlc.SnapshotListForSeriesParams{
		EndTS:          tr.End,
		IncludeVirtual: tr.IncludeEnsembles,
		MaxRows:        seriesRowCap,
		ModelIDs:       tr.ModelIDs,
		StartTS:        tr.Start.Add(-longest),
	})
	if err != nil {
		return nil, fmt.Errorf("listing snapshots: %w", err)
	}
	slices.SortStableFunc(snapshots, func(a, b *dbsqlc.SnapshotListForSeriesRow) int {
		return cmp.Or(cmp.Compare(a.ModelID, b.ModelID), a.PeriodEnd.Compare(b.PeriodEnd), a.PeriodStart.Compare(b.PeriodStart))
	})
	points := make([]seriesPoint, len(snapshots))
	for i, sn := range snapshots {
		summary, err := decodeObject(sn.ResultSummary)
		if err != nil {
			return nil, fmt.Errorf("snapshot summary of %s: %w", sn.ModelID, err)
		}
		points[i] = seriesPoint{count: sn.PredictionCount, end: sn.PeriodEnd, modelID: sn.ModelID, summary: numericFields(summary)}
		if v, ok := points[i].summary[agg.ValueField].(float64); ok {
			points[i].value, points[i].hasValue = v, true
		}
	}
	windowValues := rollingWindows(points, agg.Windows)

	var rows []ModelMetricsRow
	for i, sn := range snapshots {
		if sn.PeriodEnd.Before(tr.Start) {
			continue // only read to fill the windows of later points
		}
		performed := sn.PeriodEnd
		if sn.UpdatedAt.Before(performed) {
			performed = sn.UpdatedAt
		}
		flat := points[i].summary
		for name, v := range windowValues[i] {
			flat[name] = v
		}
		rows = append(rows, ModelMetricsRow{
			Flat:            flat,
			ModelID:         sn.ModelID,
			PerformedAt:     naiveTime(performed),
			PredictionCount: sn.PredictionCount,
		})
	}
	slices.SortStableFunc(rows, func(a, b ModelMetricsRow) int {
		return time.Time(a.PerformedAt).Compare(time.Time(b.PerformedAt))
	})
	return rows, nil
}

// seriesPoint is one snapshot as rollingWindows sees it.
type seriesPoint struct {
	count    int32
	end      time.Time
	hasValue bool
	modelID  string
	summary  map[string]any
	value    float64
}

// rollingWindows computes, for each point, every window's prediction-count-weighted mean
// of the value field over the same model's points whose period ended within the window
// before (and including) this one; nil where no point in the window has a value. Points
// come grouped by model and sorted by end, so one pass with a trailing pointer per window
// suffices.
func rollingWindows(points []seriesPoint, windows config.WindowSet) []map[string]any {
	out := make([]map[string]any, len(points))
	for i := range out {
		out[i] = make(map[string]any, len(windows))
	}
	for _, w := range windows {
		length := w.Duration.D()
		var sum, weight float64
		tail := 0
		for i, p := range points {
			if i > 0 && points[i-1].modelID != p.modelID {
				sum, weight, tail = 0, 0, i
			}
			if p.hasValue {
				sum += p.value * float64(p.count)
				weight += float64(p.count)
			}
			for tail < i && !points[tail].end.After(p.end.Add(-length)) {
				if points[tail].hasValue {
					sum -= points[tail].value * float64(points[tail].count)
					weight -= float64(points[tail].count)
				}
				tail++
			}
			if weight > 0 {
				out[i][w.Name] = sum / weight
			} else {
				out[i][w.Name] = nil
			}
		}
	}
	return out
}

func (r *reports) modelsSummary(ctx context.Context, params *RangeParams) ([]ModelSummaryRow, error) {
	tr, err := params.resolve(r.now())
	if err != nil {
		return nil, err
	}
	rows, err := dbsqlc.New().SnapshotLatestList(ctx, r.deps.Pool, &dbsqlc.SnapshotLatestListParams{
		EndTS:          tr.End,
		IncludeVirtual: tr.IncludeEnsembles,
		ModelIDs:       tr.ModelIDs,
		StartTS:        tr.Start,
	})
	if err != nil {
		return nil, fmt.Errorf("listing latest snapshots: %w", err)
	}
	out := make([]ModelSummaryRow, 0, len(rows))
	for _, row := range rows {
		summary, err := decodeObject(row.ResultSummary)
		if err != nil {
			return nil, fmt.Errorf("snapshot summary of %s: %w", row.ModelID, err)
		}
		out = append(out, ModelSummaryRow{Flat: numericFields(summary), ModelID: row.ModelID})
	}
	return out, nil
}

// rangeList adapts a loader of rows for a [start, end] range to an endpoint: errors go
// through toHTTPError and an empty result encodes as [].
func rangeList[T any](r *reports, load func(context.Context, *RangeParams) ([]T, error)) func(context.Context, *rangeInput) (*listOutput[T], error) {
	return func(ctx context.Context, in *rangeInput) (*listOutput[T], error) {
		rows, err := load(ctx, &in.RangeParams)
		if err != nil {
			return nil, toHTTPError(ctx, r.deps.Logger, err)
		}
		return &listOutput[T]{Body: nonNil(rows)}, nil
	}
}
