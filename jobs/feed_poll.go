package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

// FeedScope names one stream of records: source × subject × kind × granularity.
type FeedScope struct {
	Granularity string `json:"granularity"`
	Kind        string `json:"kind"`
	Source      string `json:"source"`
	Subject     string `json:"subject"`
}

func (s FeedScope) String() string {
	return s.Source + ":" + s.Subject + ":" + s.Kind + ":" + s.Granularity
}

func (s FeedScope) attrs() slog.Attr {
	return slog.String("feed", s.String())
}

// FeedScopes are the scopes the configuration ingests: one per subject.
func FeedScopes(cfg *config.Config) []FeedScope {
	scopes := make([]FeedScope, 0, len(cfg.FeedSubjects))
	for _, subject := range cfg.FeedSubjects {
		scopes = append(scopes, FeedScope{
			Granularity: cfg.FeedGranularity, Kind: cfg.FeedKind, Source: cfg.FeedSource, Subject: subject,
		})
	}
	return scopes
}

// FeedPollArgs polls one feed scope for records newer than its watermark.
type FeedPollArgs struct {
	FeedScope
}

// Kind is the River job kind.
func (FeedPollArgs) Kind() string { return "feed_poll" }

// InsertOpts keep one poll per scope queued or running: a slow provider never piles up
// polls behind it.
func (FeedPollArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueFeed, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueWhileActive}}
}

// FeedPollWorker fetches everything since the watermark, page by page, and stores each
// page with the watermark advance (and the predict jobs it makes due) in one transaction.
// Provider errors are logged, counted and recorded on the watermark row; the next poll
// tries again (after Retry-After when the provider asked for it). Nothing a provider
// returns stops ingestion for good.
type FeedPollWorker struct {
	river.WorkerDefaults[FeedPollArgs]
	deps *Deps
}

// feedPollTimeout bounds one poll, at most; a long catch-up continues in the next.
const feedPollTimeout = 50 * time.Second

// Timeout bounds one poll: a slice plus its allowance, like the backfill's.
func (w *FeedPollWorker) Timeout(*river.Job[FeedPollArgs]) time.Duration {
	return 2 * w.deps.withinRescue(feedPollTimeout/2)
}

// Work polls the scope.
func (w *FeedPollWorker) Work(ctx context.Context, job *river.Job[FeedPollArgs]) error {
	scope := job.Args.FeedScope
	provider, err := w.deps.Feeds.Provider(scope.Source)
	if err != nil {
		w.deps.Logger.ErrorContext(ctx, "Feed: provider unavailable", scope.attrs(), slog.String("error", err.Error()))
		return nil
	}
	step, err := feed.ParseGranularity(scope.Granularity)
	if err != nil {
		w.deps.Logger.ErrorContext(ctx, "Feed: bad granularity", scope.attrs(), slog.String("error", err.Error()))
		return nil
	}
	now := w.deps.now().UTC()
	queries := dbsqlc.New()
	state, err := queries.FeedStateGet(ctx, w.deps.Pool, &dbsqlc.FeedStateGetParams{
		Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity,
	})
	if err != nil && !errors.Is(postgres.Interpret(err), postgres.ErrNotFound) {
		return fmt.Errorf("reading watermark of %s: %w", scope, err)
	}
	start := now.Add(-time.Duration(w.deps.Config.FeedBackfillMinutes) * time.Minute)
	phase := "backfill"
	if state != nil {
		if until := backoffUntil(state.Meta); now.Before(until) {
			return nil // the provider asked us to wait
		}
		if state.LastEventTS != nil {
			start = state.LastEventTS.Add(step)
			phase = "listen"
		}
	}
	if start.After(now) {
		return nil
	}

	// Fetching stops a tenth before the job's timeout, so a slow provider's error is
	// still recorded on the watermark row.
	timeout := w.Timeout(job)
	pollCtx, cancel := context.WithTimeout(ctx, timeout-timeout/10)
	defer cancel()
	stored := 0
	err = feed.FetchAll(pollCtx, provider, feed.FetchRequest{
		Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity, Start: start, End: now, Limit: feedPageSize,
	}, func(page []feed.Record, last bool) error {
		n, err := w.deps.storePage(ctx, scope, page, phase, last, nil)
		stored += n
		return err
	})
	if stored > 0 {
		w.deps.Metrics.FeedRecords.WithLabelValues(scope.Source, scope.Subject).Add(float64(stored))
	}
	if err != nil {
		return w.recordFailure(ctx, scope, err)
	}
	if stored > 0 {
		w.deps.Logger.DebugContext(ctx, "Feed: records stored", scope.attrs(), slog.Int("records", stored))
	}
	return nil
}

// recordFailure logs and counts a failed poll and keeps the error on the watermark row
// (visible in /reports/feeds); a rate limit also records when to try again.
func (w *FeedPollWorker) recordFailure(ctx context.Context, scope FeedScope, err error) error {
	reason := "error"
	switch {
	case errors.Is(err, feed.ErrRateLimited):
		reason = "rate_limited"
	case errors.Is(err, feed.ErrUnavailable):
		reason = "unavailable"
	case errors.Is(err, feed.ErrBadResponse):
		reason = "bad_response"
	case errors.Is(err, feed.ErrUnknownSubject):
		reason = "unknown_subject"
	case errors.Is(err, context.DeadlineExceeded):
		reason = "timeout"
	}
	w.deps.Metrics.FeedErrors.WithLabelValues(scope.Source, scope.Subject, reason).Inc()
	w.deps.Logger.WarnContext(ctx, "Feed: poll failed", scope.attrs(), slog.String("reason", reason), slog.String("error", err.Error()))
	meta := map[string]any{"last_error": err.Error(), "last_error_at": w.deps.now().UTC()}
	if retryAfter, ok := feed.RetryAfter(err); ok && retryAfter > 0 {
		meta["backoff_until"] = w.deps.now().UTC().Add(retryAfter)
	}
	encoded, _ := json.Marshal(meta)
	_, dbErr := dbsqlc.New().FeedStateAdvance(context.WithoutCancel(ctx), w.deps.Pool, &dbsqlc.FeedStateAdvanceParams{
		Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity,
		Meta: encoded, LastEventTS: nil,
	})
	if dbErr != nil {
		return fmt.Errorf("recording feed failure: %w", dbErr)
	}
	return nil
}

func backoffUntil(meta json.RawMessage) time.Time {
	var m struct {
		BackoffUntil time.Time `json:"backoff_until"`
	}
	_ = json.Unmarshal(meta, &m)
	return m.BackoffUntil
}

// storePage writes a page of records, advances the watermark and enqueues the predict
// jobs the new data makes due, all in one transaction. extra runs in the same
// transaction (a backfill records its cursor there). It returns the records written.
//
// With commitAsync the commit does not wait for the WAL flush, so the predict jobs it
// enqueues are notified that much sooner (0.3–0.4 ms of a tick's pick-up). Only a write
// that nothing in this process builds on may: a Postgres crash that loses it loses the
// watermark with the page, and the next poll fetches the page again. A page followed by
// another of the same fetch must not, or the next page's watermark could be committed
// after a restart over the lost one.
func (d *Deps) storePage(ctx context.Context, scope FeedScope, page []feed.Record, phase string, commitAsync bool, extra func(ctx context.Context, tx pgx.Tx) error) (int, error) {
	if len(page) == 0 {
		return 0, nil
	}
	params := &dbsqlc.FeedRecordUpsertManyParams{
		Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity,
		TSEvents: make([]time.Time, 0, len(page)),
		Payloads: make([]json.RawMessage, 0, len(page)),
		Metas:    make([]json.RawMessage, 0, len(page)),
	}
	first, last := page[0].TsEvent, page[0].TsEvent
	for _, r := range page {
		payload, err := json.Marshal(r.Values)
		if err != nil {
			continue // non-finite values were dropped by the parsers; this cannot happen
		}
		meta := json.RawMessage(`{}`)
		if len(r.Meta) > 0 {
			if encoded, err := json.Marshal(r.Meta); err == nil {
				meta = encoded
			}
		}
		params.TSEvents = append(params.TSEvents, r.TsEvent.UTC())
		params.Payloads = append(params.Payloads, payload)
		params.Metas = append(params.Metas, meta)
		first, last = minTime(first, r.TsEvent), maxTime(last, r.TsEvent)
	}
	write := func(allowCopy bool) error {
		return postgres.WithTx(ctx, d.Pool, func(ctx context.Context, tx pgx.Tx) error {
			queries := dbsqlc.New()
			if commitAsync {
				if err := queries.TransactionCommitAsync(ctx, tx); err != nil {
					return fmt.Errorf("committing asynchronously: %w", err)
				}
			}
			if err := d.ensurePartitions(ctx, tx, "feed_records", first, last); err != nil {
				return err
			}
			if err := d.writeRecords(ctx, tx, params, first, last, allowCopy); err != nil {
				return fmt.Errorf("storing %d records of %s: %w", len(params.TSEvents), scope, err)
			}
			meta, _ := json.Marshal(map[string]any{"phase": phase, "last_error": nil, "backoff_until": nil})
			if _, err := queries.FeedStateAdvance(ctx, tx, &dbsqlc.FeedStateAdvanceParams{
				Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity,
				LastEventTS: &last, Meta: meta,
			}); err != nil {
				return fmt.Errorf("advancing watermark of %s: %w", scope, err)
			}
			if extra != nil {
				if err := extra(ctx, tx); err != nil {
					return err
				}
			}
			// The predict work that this data makes due is enqueued here, in the same
			// transaction: a tick can never be lost between the commit and the enqueue.
			return d.enqueueDuePredictions(ctx, tx, scope, last)
		})
	}
	err := write(true)
	if errors.Is(postgres.Interpret(err), postgres.ErrConflict) {
		// Another writer stored part of this range between our check and our COPY.
		err = write(false)
	}
	if err != nil {
		return 0, err
	}
	return len(params.TSEvents), nil
}

// writeRecords stores a page: by COPY when the scope has nothing in the page's range yet
// (polls and backfills of new ranges, several times faster), by upsert otherwise, so a
// page fetched twice changes nothing.
func (d *Deps) writeRecords(ctx context.Context, tx pgx.Tx, p *dbsqlc.FeedRecordUpsertManyParams, first, last time.Time, allowCopy bool) error {
	queries := dbsqlc.New()
	if allowCopy {
		exists, err := queries.FeedRecordExistsInRange(ctx, tx, &dbsqlc.FeedRecordExistsInRangeParams{
			Source: p.Source, Subject: p.Subject, Kind: p.Kind, Granularity: p.Granularity, StartTS: first, EndTS: last,
		})
		if err != nil {
			return err
		}
		if !exists && !hasDuplicates(p.TSEvents) {
			now := d.now().UTC()
			rows := make([]*dbsqlc.FeedRecordCopyParams, len(p.TSEvents))
			for i := range p.TSEvents {
				rows[i] = &dbsqlc.FeedRecordCopyParams{
					Granularity: p.Granularity, Kind: p.Kind, Meta: p.Metas[i], Payload: p.Payloads[i],
					Source: p.Source, Subject: p.Subject, TSEvent: p.TSEvents[i], TSIngested: now,
				}
			}
			_, err := queries.FeedRecordCopy(ctx, tx, rows)
			return err
		}
	}
	_, err := queries.FeedRecordUpsertMany(ctx, tx, p)
	return err
}

func hasDuplicates(ts []time.Time) bool {
	seen := make(map[time.Time]struct{}, len(ts))
	for _, t := range ts {
		if _, ok := seen[t]; ok {
			return true
		}
		seen[t] = struct{}{}
	}
	return false
}

// partitionCache remembers which daily partitions exist so writers ask Postgres once per
// day and table, not once per page.
type partitionCache struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (d *Deps) ensurePartitions(ctx context.Context, tx pgx.Tx, table string, from, to time.Time) error {
	d.partitions.mu.Lock()
	defer d.partitions.mu.Unlock()
	if d.partitions.seen == nil {
		d.partitions.seen = map[string]bool{}
	}
	fromDay := from.UTC().Truncate(24 * time.Hour)
	toDay := to.UTC().Truncate(24 * time.Hour)
	key := table + fromDay.Format("20060102") + toDay.Format("20060102")
	if d.partitions.seen[key] {
		return nil
	}
	if _, err := dbsqlc.New().PartitionEnsureRange(ctx, tx, &dbsqlc.PartitionEnsureRangeParams{
		Parent: table, FromDay: fromDay, ToDay: toDay,
	}); err != nil {
		return fmt.Errorf("creating partitions of %s: %w", table, err)
	}
	d.partitions.seen[key] = true
	return nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Feeds builds providers once per process and shares them between jobs.
type Feeds struct {
	mu        sync.Mutex
	providers map[string]feed.Provider
	// New builds a provider; tests replace it to point at httptest servers.
	New func(name string) (feed.Provider, error)
}

// NewFeeds returns a provider cache configured from cfg.
func NewFeeds(cfg *config.Config) *Feeds {
	return &Feeds{New: func(name string) (feed.Provider, error) {
		return feed.New(name, feed.Config{Options: feed.Options(cfg.FeedOptions), Source: name, UserAgent: "crunch-node"})
	}}
}

// Provider returns the provider for a source, building it on first use.
func (f *Feeds) Provider(name string) (feed.Provider, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.providers[name]; ok {
		return p, nil
	}
	p, err := f.New(name)
	if err != nil {
		return nil, err
	}
	if f.providers == nil {
		f.providers = map[string]feed.Provider{}
	}
	f.providers[name] = p
	return p, nil
}

// feedPageSize is the page size asked of providers: Binance's maximum, and a transaction
// size that keeps each page's commit short.
const feedPageSize = 1000
