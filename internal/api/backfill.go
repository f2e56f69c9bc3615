package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/jobs"
)

// BackfillJob is a backfill as the API shows it (the Python engine's job dict).
type BackfillJob struct {
	CreatedAt      time.Time  `json:"created_at"`
	CursorTS       *time.Time `json:"cursor_ts"`
	EndTS          time.Time  `json:"end_ts"`
	Error          *string    `json:"error"`
	Granularity    string     `json:"granularity"`
	ID             string     `json:"id"`
	Kind           string     `json:"kind"`
	PagesFetched   int32      `json:"pages_fetched"`
	ProgressPct    *float64   `json:"progress_pct,omitempty" doc:"Share of the range behind the cursor, 0–100 (single-job view only)."`
	RecordsWritten int64      `json:"records_written"`
	Source         string     `json:"source"`
	StartTS        time.Time  `json:"start_ts"`
	Status         string     `json:"status" enum:"pending,running,completed,failed"`
	Subject        string     `json:"subject"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func backfillJobFrom(j *dbsqlc.BackfillJob) BackfillJob {
	return BackfillJob{
		CreatedAt: j.CreatedAt, CursorTS: j.CursorTS, EndTS: j.EndTS, Error: j.Error,
		Granularity: j.Granularity, ID: j.ID, Kind: j.Kind, PagesFetched: j.PagesFetched,
		RecordsWritten: j.RecordsWritten, Source: j.Source, StartTS: j.StartTS, Status: j.Status,
		Subject: j.Subject, UpdatedAt: j.UpdatedAt,
	}
}

// parseTime accepts RFC 3339 and naive ISO timestamps, which are UTC (as in the Python
// engine).
func parseTime(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, Public(ErrInvalid, fmt.Sprintf("%s: %q is not an ISO 8601 timestamp", field, s))
}

type backfillCreateInput struct {
	Body struct {
		End         string `json:"end"         doc:"End of the range, ISO 8601 (naive means UTC)."`
		Granularity string `json:"granularity" example:"1m"`
		Kind        string `json:"kind"        example:"candle"`
		Source      string `json:"source"      example:"binance"`
		Start       string `json:"start"       doc:"Start of the range, ISO 8601 (naive means UTC)."`
		Subject     string `json:"subject"     example:"BTCUSDT"`
	}
}

type backfillJobOutput struct {
	Body BackfillJob
}

type backfillListInput struct {
	Status string `query:"status" doc:"Only jobs in this status." enum:"pending,running,completed,failed," required:"false"`
}

type backfillListOutput struct {
	Body []BackfillJob
}

type backfillGetInput struct {
	ID string `path:"id"`
}

func registerBackfill(api huma.API, deps Deps) {
	tags := []string{"Backfill"}
	huma.Register(api, huma.Operation{
		OperationID:   "backfill-create",
		Method:        http.MethodPost,
		Path:          "/reports/backfill",
		Summary:       "Start a backfill",
		Description:   "Fetches a historical range into feed_records as a River job, resumable from its cursor. 409 while a backfill for the same feed scope is active.",
		Tags:          tags,
		DefaultStatus: http.StatusCreated,
		Security:      []map[string][]string{{"apiKey": {}}},
	}, func(ctx context.Context, in *backfillCreateInput) (*backfillJobOutput, error) {
		if deps.River == nil {
			return nil, huma.Error503ServiceUnavailable("this process cannot enqueue jobs")
		}
		start, err := parseTime("start", in.Body.Start)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		end, err := parseTime("end", in.Body.End)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		for field, v := range map[string]string{"source": in.Body.Source, "subject": in.Body.Subject, "kind": in.Body.Kind, "granularity": in.Body.Granularity} {
			if strings.TrimSpace(v) == "" {
				return nil, toHTTPError(ctx, deps.Logger, Public(ErrInvalid, field+" is required"))
			}
		}
		job, err := jobs.StartBackfill(ctx, deps.Pool, deps.River, jobs.BackfillRequest{
			Scope: jobs.FeedScope{Source: in.Body.Source, Subject: in.Body.Subject, Kind: in.Body.Kind, Granularity: in.Body.Granularity},
			Start: start, End: end,
		})
		switch {
		case errors.Is(err, jobs.ErrBackfillActive):
			return nil, toHTTPError(ctx, deps.Logger, Public(ErrConflict, err.Error()))
		case errors.Is(err, jobs.ErrInvalidBackfill):
			return nil, toHTTPError(ctx, deps.Logger, Public(ErrInvalid, err.Error()))
		case err != nil:
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		return &backfillJobOutput{Body: backfillJobFrom(job)}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "backfill-job-list",
		Method:      http.MethodGet,
		Path:        "/reports/backfill/jobs",
		Summary:     "Backfill jobs",
		Description: "The newest 100 backfills, newest first.",
		Tags:        tags,
		Security:    []map[string][]string{{"apiKey": {}}},
	}, func(ctx context.Context, in *backfillListInput) (*backfillListOutput, error) {
		var status *string
		if in.Status != "" {
			status = &in.Status
		}
		rows, err := dbsqlc.New().BackfillJobList(ctx, deps.Pool, status)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, err)
		}
		out := make([]BackfillJob, len(rows))
		for i, row := range rows {
			out[i] = backfillJobFrom(row)
		}
		return &backfillListOutput{Body: out}, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "backfill-job-get",
		Method:      http.MethodGet,
		Path:        "/reports/backfill/jobs/{id}",
		Summary:     "One backfill job, with its progress",
		Tags:        tags,
		Security:    []map[string][]string{{"apiKey": {}}},
	}, func(ctx context.Context, in *backfillGetInput) (*backfillJobOutput, error) {
		row, err := dbsqlc.New().BackfillJobGet(ctx, deps.Pool, in.ID)
		if err != nil {
			return nil, toHTTPError(ctx, deps.Logger, postgres.Interpret(err))
		}
		job := backfillJobFrom(row)
		pct := jobs.BackfillProgress(row)
		job.ProgressPct = &pct
		return &backfillJobOutput{Body: job}, nil
	})
}
