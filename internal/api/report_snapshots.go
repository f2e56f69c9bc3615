package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// SnapshotRow is one /reports/snapshots entry. Times are naive like the Python engine's.
// The numeric summary fields are also flattened to the top level: the Multi-Metric bar
// chart reads them there (the Python engine only nested them, so that chart stayed empty).
type SnapshotRow struct {
	_               struct{}       `json:"-" additionalProperties:"true"`
	CreatedAt       naiveTime      `json:"created_at"`
	ID              string         `json:"id"`
	ModelID         string         `json:"model_id"`
	PeriodEnd       naiveTime      `json:"period_end"`
	PeriodStart     naiveTime      `json:"period_start"`
	PredictionCount int32          `json:"prediction_count"`
	ResultSummary   jsonObject     `json:"result_summary"`
	ScopeKey        string         `json:"scope_key"        doc:"Empty for a model's overall snapshot."`
	Flat            map[string]any `json:"-"`
}

// MarshalJSON adds the flattened summary.
func (r SnapshotRow) MarshalJSON() ([]byte, error) {
	type plain SnapshotRow
	return marshalFlat(plain(r), r.Flat)
}

type snapshotsInput struct {
	IncludeEnsembles bool     `query:"include_ensembles" doc:"Include ensembles (virtual models); implied when model_id is given."`
	Limit            int      `query:"limit"             default:"100" minimum:"1" maximum:"1000" doc:"At most this many snapshots, newest first."`
	ModelID          string   `query:"model_id"          doc:"Only this model's snapshots."`
	ProjectIDs       []string `query:"projectIds,explode" doc:"Only these models (the metrics page's selection), repeated or comma-separated."`
	ScopeKey         string   `query:"scope_key"         doc:"Snapshots of this scope; empty (the default) is the overall snapshot per model."`
	Since            string   `query:"since"             doc:"Only periods ending at or after this time (ISO 8601)."`
	Until            string   `query:"until"             doc:"Only periods starting at or before this time (ISO 8601)."`
}

func (r *reports) registerSnapshots(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "report-snapshots",
		Method:      http.MethodGet,
		Path:        "/reports/snapshots",
		Summary:     "Snapshots",
		Description: "The newest snapshots first (the Python engine returned the oldest).",
		Tags:        []string{"Reports"},
	}, func(ctx context.Context, in *snapshotsInput) (*listOutput[SnapshotRow], error) {
		rows, err := r.snapshots(ctx, in)
		if err != nil {
			return nil, toHTTPError(ctx, r.deps.Logger, err)
		}
		return &listOutput[SnapshotRow]{Body: nonNil(rows)}, nil
	})
}

func (r *reports) snapshots(ctx context.Context, in *snapshotsInput) ([]SnapshotRow, error) {
	params := &dbsqlc.SnapshotListNewestParams{
		IncludeVirtual: in.IncludeEnsembles || in.ModelID != "",
		MaxRows:        int32(in.Limit),
		ModelIDs:       splitIDs(in.ProjectIDs),
		ScopeKey:       in.ScopeKey,
	}
	if in.ModelID != "" {
		params.ModelID = &in.ModelID
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
	found, err := dbsqlc.New().SnapshotListNewest(ctx, r.deps.Pool, params)
	if err != nil {
		return nil, fmt.Errorf("listing snapshots: %w", err)
	}
	rows := make([]SnapshotRow, 0, len(found))
	for _, sn := range found {
		summary, err := decodeObject(sn.ResultSummary)
		if err != nil {
			return nil, fmt.Errorf("snapshot summary of %s: %w", sn.ID, err)
		}
		rows = append(rows, SnapshotRow{
			CreatedAt:       naiveTime(sn.CreatedAt),
			Flat:            numericFields(summary),
			ID:              sn.ID,
			ModelID:         sn.ModelID,
			PeriodEnd:       naiveTime(sn.PeriodEnd),
			PeriodStart:     naiveTime(sn.PeriodStart),
			PredictionCount: sn.PredictionCount,
			ResultSummary:   jsonObject(sn.ResultSummary),
			ScopeKey:        sn.ScopeKey,
		})
	}
	return rows, nil
}
