package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// notScoredReason is the Python engine's score_failed_reason for a prediction without a
// score.
const notScoredReason = "Prediction not scored"

// PredictionRow is one /reports/predictions point. Besides the Python engine's fields it
// carries score_success (what the Predictions widget's alertConfig reads), the prediction
// status, and the scope's fields plus horizon and param at the top level, which the
// widget's subject/horizon filters and param group-by read.
type PredictionRow struct {
	_                  struct{}       `json:"-" additionalProperties:"true"`
	Horizon            int32          `json:"horizon"              doc:"resolve_horizon_seconds of the prediction's schedule."`
	ModelID            string         `json:"model_id"`
	Param              string         `json:"param"                doc:"The scope_key."`
	PerformedAt        naiveTime      `json:"performed_at"`
	PredictionConfigID int64          `json:"prediction_config_id"`
	Scope              jsonObject     `json:"scope"`
	ScopeKey           string         `json:"scope_key"`
	ScoreFailed        bool           `json:"score_failed"         doc:"True when the score failed or there is no score yet."`
	ScoreFailedReason  *string        `json:"score_failed_reason"`
	ScoreSuccess       bool           `json:"score_success"        doc:"The negation of score_failed."`
	ScoreValue         *float64       `json:"score_value"`
	ScoredAt           *naiveTime     `json:"scored_at"`
	Status             string         `json:"status"               enum:"PENDING,SCORED,FAILED,ABSENT,UNRESOLVED"`
	Flat               map[string]any `json:"-"`
}

// MarshalJSON adds the flattened scope fields.
func (r PredictionRow) MarshalJSON() ([]byte, error) {
	type plain PredictionRow
	return marshalFlat(plain(r), r.Flat)
}

type predictionsInput struct {
	RangeParams
	Limit int `query:"limit" default:"10000" minimum:"1" maximum:"100000" doc:"At most this many predictions: the newest of the range, returned oldest first."`
}

func (r *reports) registerPredictions(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "report-predictions",
		Method:      http.MethodGet,
		Path:        "/reports/predictions",
		Summary:     "Predictions with their scores",
		Description: "Predictions performed in [start, end] (every status), sorted by performed_at.",
		Tags:        []string{"Reports"},
	}, func(ctx context.Context, in *predictionsInput) (*listOutput[PredictionRow], error) {
		rows, err := r.predictions(ctx, in)
		if err != nil {
			return nil, toHTTPError(ctx, r.deps.Logger, err)
		}
		return &listOutput[PredictionRow]{Body: nonNil(rows)}, nil
	})
}

func (r *reports) predictions(ctx context.Context, in *predictionsInput) ([]PredictionRow, error) {
	tr, err := in.resolve(r.now())
	if err != nil {
		return nil, err
	}
	found, err := dbsqlc.New().PredictionListForReportNewest(ctx, r.deps.Pool, &dbsqlc.PredictionListForReportNewestParams{
		EndTS:          tr.End,
		IncludeVirtual: tr.IncludeEnsembles,
		MaxRows:        int32(in.Limit),
		ModelIDs:       tr.ModelIDs,
		StartTS:        tr.Start,
	})
	if err != nil {
		return nil, fmt.Errorf("listing predictions: %w", err)
	}
	slices.Reverse(found)
	rows := make([]PredictionRow, 0, len(found))
	for _, p := range found {
		scope, err := decodeObject(p.Scope)
		if err != nil {
			return nil, fmt.Errorf("scope of a prediction of %s: %w", p.ModelID, err)
		}
		row := PredictionRow{
			Flat:               scalarFields(scope),
			Horizon:            p.ResolveHorizonSeconds,
			ModelID:            p.ModelID,
			Param:              p.ScopeKey,
			PerformedAt:        naiveTime(p.PerformedAt),
			PredictionConfigID: p.PredictionConfigID,
			Scope:              jsonObject(p.Scope),
			ScopeKey:           p.ScopeKey,
			ScoreValue:         p.ScoreValue,
			ScoredAt:           naivePtr(p.ScoredAt),
			Status:             p.Status,
		}
		switch {
		case p.ScoreSuccess != nil:
			row.ScoreSuccess = *p.ScoreSuccess
			row.ScoreFailedReason = p.ScoreFailedReason
		case p.FailedReason != nil:
			row.ScoreFailedReason = p.FailedReason // the model failed; say why
		default:
			reason := notScoredReason
			row.ScoreFailedReason = &reason
		}
		row.ScoreFailed = !row.ScoreSuccess
		rows = append(rows, row)
	}
	return rows, nil
}
