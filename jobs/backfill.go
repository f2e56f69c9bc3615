package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

// ErrBackfillActive is returned when a backfill for the same feed scope is pending or
// running; the API answers 409.
var ErrBackfillActive = errors.New("a backfill for this feed scope is already pending or running")

// ErrInvalidBackfill marks a request that cannot be run (bad range or granularity); the
// API answers 422.
var ErrInvalidBackfill = errors.New("invalid backfill")

// BackfillArgs runs one row of backfill_jobs.
type BackfillArgs struct {
	JobID string `json:"job_id"`
}

// Kind is the River job kind.
func (BackfillArgs) Kind() string { return "backfill" }

// InsertOpts put backfills on the feed queue.
func (BackfillArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueFeed, MaxAttempts: backfillMaxAttempts}
}

const (
	backfillMaxAttempts = 10
	// backfillSlice is how long one run works before it yields (snoozes), at most: every
	// run is a fresh attempt, so River's stuck-job rescue never mistakes a backfill of
	// days for a dead one, and one killed mid-way waits only the rescue window.
	backfillSlice = 30 * time.Second
	// backfillPageAllowance is what the timeout adds to the slice for the page in flight.
	backfillPageAllowance = 30 * time.Second
)

// BackfillRequest is a backfill to start.
type BackfillRequest struct {
	End   time.Time
	Scope FeedScope
	Start time.Time
}

// StartBackfill records the job and enqueues its River job in one transaction. A second
// request for a scope with an active backfill is refused with ErrBackfillActive.
func StartBackfill(ctx context.Context, pool postgres.Beginner, client *river.Client[pgx.Tx], req BackfillRequest) (*dbsqlc.BackfillJob, error) {
	if !req.End.After(req.Start) {
		return nil, fmt.Errorf("%w: end must be after start", ErrInvalidBackfill)
	}
	if _, err := feed.ParseGranularity(req.Scope.Granularity); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidBackfill, err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return postgres.WithTxV(ctx, pool, func(ctx context.Context, tx pgx.Tx) (*dbsqlc.BackfillJob, error) {
		job, err := dbsqlc.New().BackfillJobInsert(ctx, tx, &dbsqlc.BackfillJobInsertParams{
			ID: hex.EncodeToString(id), Source: req.Scope.Source, Subject: req.Scope.Subject,
			Kind: req.Scope.Kind, Granularity: req.Scope.Granularity,
			StartTS: req.Start.UTC(), EndTS: req.End.UTC(),
		})
		if err != nil {
			if errors.Is(postgres.Interpret(err), postgres.ErrConflict) {
				return nil, ErrBackfillActive
			}
			return nil, fmt.Errorf("recording backfill: %w", err)
		}
		if _, err := client.InsertTx(ctx, tx, BackfillArgs{JobID: job.ID}, nil); err != nil {
			return nil, fmt.Errorf("enqueuing backfill: %w", err)
		}
		return job, nil
	})
}

// BackfillWorker fetches the range page by page from its cursor. Each page is written with
// the new cursor in one transaction, so a crash at any point resumes exactly after the
// last written page and stores nothing twice.
type BackfillWorker struct {
	river.WorkerDefaults[BackfillArgs]
	deps *Deps
}

// Timeout leaves room for the slice plus one slow page.
func (w *BackfillWorker) Timeout(*river.Job[BackfillArgs]) time.Duration {
	return w.deps.withinRescue(backfillSlice) + w.deps.withinRescue(backfillPageAllowance)
}

var errSliceDone = errors.New("backfill slice done")

// Work continues the backfill until done, yielding every backfillSlice.
func (w *BackfillWorker) Work(ctx context.Context, job *river.Job[BackfillArgs]) error {
	queries := dbsqlc.New()
	row, err := queries.BackfillJobGet(ctx, w.deps.Pool, job.Args.JobID)
	if err != nil {
		return fmt.Errorf("reading backfill %s: %w", job.Args.JobID, err)
	}
	if row.Status == "completed" || row.Status == "failed" {
		return nil
	}
	scope := FeedScope{Source: row.Source, Subject: row.Subject, Kind: row.Kind, Granularity: row.Granularity}
	provider, err := w.deps.Feeds.Provider(scope.Source)
	if err != nil {
		return w.fail(ctx, row.ID, err)
	}
	step, err := feed.ParseGranularity(scope.Granularity)
	if err != nil {
		return w.fail(ctx, row.ID, err)
	}
	cursor := row.StartTS
	if row.CursorTS != nil && row.CursorTS.After(cursor) {
		cursor = *row.CursorTS
	}
	started, slice := time.Now(), w.deps.withinRescue(backfillSlice)
	if !cursor.After(row.EndTS) {
		err = feed.FetchAll(ctx, provider, feed.FetchRequest{
			Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity, Start: cursor, End: row.EndTS, Limit: feedPageSize,
		}, func(page []feed.Record, _ bool) error {
			last := page[len(page)-1].TsEvent
			next := last.Add(step)
			// Synchronous: the job's progress and end are written after each page.
			n, err := w.deps.storePage(ctx, scope, page, "backfill-manual", false, func(ctx context.Context, tx pgx.Tx) error {
				_, err := queries.BackfillJobProgress(ctx, tx, &dbsqlc.BackfillJobProgressParams{
					ID: row.ID, CursorTS: next, Records: int64(len(page)),
				})
				return err
			})
			if err != nil {
				return err
			}
			w.deps.Metrics.FeedRecords.WithLabelValues(scope.Source, scope.Subject).Add(float64(n))
			if time.Since(started) > slice {
				return errSliceDone
			}
			return nil
		})
	}
	switch {
	case errors.Is(err, errSliceDone):
		return river.JobSnooze(time.Millisecond)
	case err != nil:
		w.deps.Logger.WarnContext(ctx, "Backfill: page failed", slog.String("backfill_id", row.ID), slog.Int("attempt", job.Attempt), slog.String("error", err.Error()))
		if retryAfter, ok := feed.RetryAfter(err); ok && retryAfter > 0 {
			return river.JobSnooze(retryAfter)
		}
		if job.Attempt >= backfillMaxAttempts {
			return w.fail(ctx, row.ID, err)
		}
		return err
	}
	status := "completed"
	if _, err := queries.BackfillJobFinish(ctx, w.deps.Pool, &dbsqlc.BackfillJobFinishParams{ID: row.ID, Status: status}); err != nil {
		return fmt.Errorf("finishing backfill %s: %w", row.ID, err)
	}
	w.deps.Logger.InfoContext(ctx, "Backfill: completed", slog.String("backfill_id", row.ID), scope.attrs())
	return nil
}

// fail marks the backfill failed with its reason; the River job then ends normally so
// the scope is free for a new request.
func (w *BackfillWorker) fail(ctx context.Context, id string, cause error) error {
	reason := cause.Error()
	if _, err := dbsqlc.New().BackfillJobFinish(ctx, w.deps.Pool, &dbsqlc.BackfillJobFinishParams{ID: id, Status: "failed", Error: &reason}); err != nil {
		return fmt.Errorf("marking backfill %s failed: %w", id, err)
	}
	return nil
}

// BackfillProgress is how far a backfill's cursor is through its range, 0–100.
func BackfillProgress(j *dbsqlc.BackfillJob) float64 {
	if j.Status == "completed" {
		return 100
	}
	if j.CursorTS == nil {
		return 0
	}
	total := j.EndTS.Sub(j.StartTS)
	if total <= 0 {
		return 100
	}
	return min(max(float64(j.CursorTS.Sub(j.StartTS))/float64(total)*100, 0), 100)
}
