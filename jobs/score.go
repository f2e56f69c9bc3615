package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/scoring/metric"
	"github.com/crunchnode/crunch-node/internal/script"
)

// ScoreArgs is the periodic scoring run.
type ScoreArgs struct{}

// Kind is the River job kind.
func (ScoreArgs) Kind() string { return "score" }

// InsertOpts keep one scoring run queued at a time; several loops and score processes
// still share the work, because each batch locks the ticks it claims with SKIP LOCKED.
func (ScoreArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueScore, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueWhileActive}}
}

// ScoreBatchSize is about how many due predictions one transaction scores.
const ScoreBatchSize = 10_000

// Scoring is what the score worker needs beyond the database: the operator's scorer and
// ground-truth resolver, built and dry-run at start.
type Scoring struct {
	Scorer   scoring.Scorer
	Resolver scoring.Resolver
	// FullWindow means the resolver wants every record of the window (a Starlark
	// resolver); the built-in one needs only the first and last, which the due query
	// already returns.
	FullWindow bool
	// Grace is how long after resolvable_at an unresolvable prediction is retried before
	// it is marked UNRESOLVED with its reason.
	Grace time.Duration
	// MaxStalenessFraction is the configured staleness guard, for the resolver config.
	MaxStalenessFraction float64
	// Metrics computes the configured metric names over MetricWindow (the first
	// leaderboard window) each cycle; their values are merged into the snapshots the
	// cycle writes, so the leaderboard, checkpoints and reports see them.
	Metrics      *metric.Registry
	MetricNames  []string
	MetricWindow time.Duration
	// Aggregator is the operator's MODEL_SCORE_AGGREGATOR; nil means the built-in mean,
	// which snapshots compute in SQL.
	Aggregator scoring.Aggregator
}

// ScoreWorker scores due ticks in batches until none is left: ground truth from the feed
// once per tick, the scorer per prediction (isolated: one failure never stops the rest),
// scores, statuses and the dirty snapshot buckets written in the batch's transaction;
// then, once per round, the dirty snapshots recomputed, the window metrics merged, the
// Merkle cycle committed and a leaderboard refresh enqueued, in one transaction.
type ScoreWorker struct {
	river.WorkerDefaults[ScoreArgs]
	deps *Deps

	// metricsCache keeps the last window metrics briefly: a backlog is scored in many
	// rounds seconds apart, and recomputing a day's metrics for every round would cost
	// more than scoring.
	// predictionsPerTick is the mean size of the ticks scored last, to claim about
	// ScoreBatchSize predictions a batch.
	predictionsPerTick atomic.Int64

	metricsMu     sync.Mutex
	metricsAt     time.Time
	metricsValues map[string]map[string]float64
}

// metricsMaxAge is how old cached window metrics may be when merged into a snapshot.
const metricsMaxAge = 10 * time.Second

// scoreSlice is how long one run keeps taking batches, at most; a longer backlog is
// worked by the next runs, so a run never outlives River's stuck-job rescue.
const scoreSlice = time.Minute

// scoreBatchAllowance is what the timeout adds to the slice for the batch in flight.
const scoreBatchAllowance = 30 * time.Second

// Timeout bounds a scoring run: the slice plus one batch.
func (w *ScoreWorker) Timeout(*river.Job[ScoreArgs]) time.Duration {
	return w.deps.withinRescue(scoreSlice) + w.deps.withinRescue(scoreBatchAllowance)
}

// Work scores due ticks in rounds of at most snapshotEvery, recomputing the snapshots the
// round touched after each, until nothing is due or the run's slice is used up (a longer
// backlog is worked by the next runs, so a run never outlives River's stuck-job rescue).
func (w *ScoreWorker) Work(ctx context.Context, job *river.Job[ScoreArgs]) error {
	if w.deps.Scoring == nil {
		return errors.New("scoring is not configured in this process")
	}
	total := 0
	started, slice := time.Now(), w.deps.withinRescue(scoreSlice)
	for {
		n, more, err := w.scoreRound(ctx, min(snapshotEvery, slice-time.Since(started)))
		total += n
		if err != nil {
			return err
		}
		if err := w.recomputeSnapshots(ctx); err != nil {
			return err
		}
		if !more || time.Since(started) >= slice {
			break
		}
	}
	if total > 0 {
		w.deps.Logger.InfoContext(ctx, "Score: run finished", slog.Int("scored", total))
	}
	return nil
}

// scoreLoops is how many batch loops a round drives at once. Postgres runs each
// connection's statements on one core, so one loop leaves the database's other cores
// idle; the loops never meet, because each batch claims its ticks with SKIP LOCKED.
const scoreLoops = 2

// scoreRound runs scoreLoops batch loops until nothing is due or the round's time is
// up, and reports how many predictions were scored and whether more may be due.
func (w *ScoreWorker) scoreRound(ctx context.Context, budget time.Duration) (int, bool, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		more  bool
		errs  []error
	)
	started := time.Now()
	for range scoreLoops {
		wg.Go(func() {
			for {
				n, again, err := w.scoreBatch(ctx)
				mu.Lock()
				total += n
				if err != nil {
					errs = append(errs, err)
				}
				stop := err != nil || !again || len(errs) > 0
				if !stop && time.Since(started) >= budget {
					more, stop = true, true
				}
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()
	return total, more, errors.Join(errs...)
}

// snapshotEvery is how often a run working through a backlog recomputes snapshots.
const snapshotEvery = 10 * time.Second

// scoreRetryInterval is how long a tick whose ground truth is not there yet waits before
// it is examined again (never past the end of its grace period).
const scoreRetryInterval = 10 * time.Second

// tickKey names a tick: a prediction config and a slot.
type tickKey struct {
	configID int64
	slot     time.Time
}

// newTickKey normalises the slot to UTC: time.Time values are equal map keys only when
// their locations are the same pointer.
func newTickKey(configID int64, slot time.Time) tickKey {
	return tickKey{configID, slot.UTC()}
}

// batchSizeTicks is how many ticks to claim for about ScoreBatchSize predictions, from
// the size of the ticks seen so far.
func (w *ScoreWorker) batchSizeTicks() int32 {
	perTick := w.predictionsPerTick.Load()
	if perTick <= 0 {
		perTick = 100
	}
	return int32(max(1, ScoreBatchSize/perTick))
}

// scoreBatch claims a batch of due ticks and scores their pending predictions in one
// transaction: ground truth once per tick, the scorer per prediction (isolated), scores
// copied in, statuses set, the touched snapshot buckets marked, the ticks removed from
// the queue (or put back when their ground truth is not there yet). It reports whether
// more ticks may be due.
func (w *ScoreWorker) scoreBatch(ctx context.Context) (int, bool, error) {
	queries := dbsqlc.New()
	now := w.deps.now().UTC()
	maxTicks := w.batchSizeTicks()
	type outcome struct {
		scored int
		more   bool
	}
	out, err := postgres.WithTxV(ctx, w.deps.Pool, func(ctx context.Context, tx pgx.Tx) (outcome, error) {
		ticks, err := queries.ScoreQueueClaim(ctx, tx, &dbsqlc.ScoreQueueClaimParams{Now: &now, MaxTicks: maxTicks})
		if err != nil {
			return outcome{}, fmt.Errorf("claiming due ticks: %w", err)
		}
		if len(ticks) == 0 {
			return outcome{}, nil
		}
		pending, err := w.pendingByTick(ctx, tx, ticks)
		if err != nil {
			return outcome{}, err
		}

		var (
			items    []scoring.Item
			rows     []*dbsqlc.PredictionListPendingByTicksRow
			marks    = &dbsqlc.PredictionMarkManyParams{}
			done     = &dbsqlc.ScoreQueueDeleteParams{}
			deferred = map[time.Time]*dbsqlc.ScoreQueueDeferParams{}
			count    int64
		)
		for _, tick := range ticks {
			key := newTickKey(tick.PredictionConfigID, tick.SlotAt)
			predictions := pending[key]
			count += int64(len(predictions))
			if len(predictions) == 0 {
				// Every prediction of the tick failed or is absent: nothing to resolve.
				done.ConfigIDs = append(done.ConfigIDs, key.configID)
				done.Slots = append(done.Slots, key.slot)
				continue
			}
			resolve, err := w.tickResolver(ctx, tx, tick)
			if err != nil {
				return outcome{}, err
			}
			retry := false
			first := len(rows)
			for _, row := range predictions {
				item, resolution := resolve(ctx, row)
				if resolution.OK() {
					items = append(items, item)
					rows = append(rows, row)
					continue
				}
				// Unresolvable for now: retried until the grace period ends, then marked
				// with its reason and never examined again.
				if resolution.Retryable && now.Before(tick.ResolvableAt.Add(w.deps.Scoring.Grace)) {
					retry = true
					continue
				}
				addMark(marks, row, "UNRESOLVED", resolution.Code+": "+resolution.Reason)
			}
			if retry {
				// The tick stays queued for the predictions still waiting; the ones
				// scored now are marked one by one.
				for _, row := range rows[first:] {
					addMark(marks, row, "SCORED", "")
				}
				at := minTime(now.Add(scoreRetryInterval), tick.ResolvableAt.Add(w.deps.Scoring.Grace))
				d := deferred[at]
				if d == nil {
					d = &dbsqlc.ScoreQueueDeferParams{NotBefore: at}
					deferred[at] = d
				}
				d.ConfigIDs = append(d.ConfigIDs, key.configID)
				d.Slots = append(d.Slots, key.slot)
				continue
			}
			done.ConfigIDs = append(done.ConfigIDs, key.configID)
			done.Slots = append(done.Slots, key.slot)
		}
		if count > 0 {
			w.predictionsPerTick.Store(max(1, count/int64(len(ticks))))
		}

		results := scoring.ScoreBatch(ctx, w.deps.Scoring.Scorer, items)
		if err := ctx.Err(); err != nil {
			return outcome{}, fmt.Errorf("scoring interrupted: %w", err)
		}
		if err := w.writeScores(ctx, tx, now, items, rows, results); err != nil {
			return outcome{}, err
		}
		if len(marks.IDs) > 0 {
			if _, err := queries.PredictionMarkMany(ctx, tx, marks); err != nil {
				return outcome{}, fmt.Errorf("updating prediction statuses: %w", err)
			}
		}
		if len(done.ConfigIDs) > 0 {
			// Every prediction of a finished tick still PENDING here was scored.
			scored := &dbsqlc.PredictionMarkTicksScoredParams{ConfigIDs: done.ConfigIDs, Slots: done.Slots}
			scored.MinSlot, scored.MaxSlot = slotRange(done.Slots)
			if _, err := queries.PredictionMarkTicksScored(ctx, tx, scored); err != nil {
				return outcome{}, fmt.Errorf("marking scored ticks: %w", err)
			}
			if err := queries.ScoreQueueDelete(ctx, tx, done); err != nil {
				return outcome{}, fmt.Errorf("removing scored ticks from the queue: %w", err)
			}
		}
		for _, d := range deferred {
			if err := queries.ScoreQueueDefer(ctx, tx, d); err != nil {
				return outcome{}, fmt.Errorf("putting back ticks without ground truth: %w", err)
			}
		}
		return outcome{scored: len(results), more: len(ticks) == int(maxTicks)}, nil
	})
	return out.scored, out.more, err
}

// addMark adds one prediction's outcome to a PredictionMarkMany batch.
func addMark(marks *dbsqlc.PredictionMarkManyParams, row *dbsqlc.PredictionListPendingByTicksRow, status, reason string) {
	marks.IDs = append(marks.IDs, row.ID)
	marks.Slots = append(marks.Slots, row.SlotAt)
	marks.Statuses = append(marks.Statuses, status)
	marks.Reasons = append(marks.Reasons, reason)
}

// slotRange returns the earliest and latest of non-empty slots: the bounds that let the
// planner skip the daily partitions a statement cannot touch.
func slotRange(slots []time.Time) (time.Time, time.Time) {
	lo, hi := slots[0], slots[0]
	for _, slot := range slots[1:] {
		lo, hi = minTime(lo, slot), maxTime(hi, slot)
	}
	return lo, hi
}

// pendingByTick reads the pending predictions of the claimed ticks, grouped by tick.
func (w *ScoreWorker) pendingByTick(ctx context.Context, tx pgx.Tx, ticks []*dbsqlc.ScoreQueueClaimRow) (map[tickKey][]*dbsqlc.PredictionListPendingByTicksRow, error) {
	params := &dbsqlc.PredictionListPendingByTicksParams{}
	for _, t := range ticks {
		params.ConfigIDs = append(params.ConfigIDs, t.PredictionConfigID)
		params.Slots = append(params.Slots, t.SlotAt)
	}
	params.MinSlot, params.MaxSlot = slotRange(params.Slots)
	rows, err := dbsqlc.New().PredictionListPendingByTicks(ctx, tx, params)
	if err != nil {
		return nil, fmt.Errorf("reading the claimed ticks' predictions: %w", err)
	}
	byTick := make(map[tickKey][]*dbsqlc.PredictionListPendingByTicksRow, len(ticks))
	for _, r := range rows {
		key := newTickKey(r.PredictionConfigID, r.SlotAt)
		byTick[key] = append(byTick[key], r)
	}
	return byTick, nil
}

// writeScores copies the batch's scores in and marks the snapshot buckets they change as
// dirty.
func (w *ScoreWorker) writeScores(ctx context.Context, tx pgx.Tx, now time.Time, items []scoring.Item, rows []*dbsqlc.PredictionListPendingByTicksRow, results []scoring.Result) error {
	if len(results) == 0 {
		return nil
	}
	queries := dbsqlc.New()
	scores := make([]*dbsqlc.ScoreCopyParams, len(results))
	dirty := &dbsqlc.SnapshotDirtyMarkParams{}
	seen := map[snapshotKey]bool{}
	period := int64(w.deps.Config.SnapshotPeriodSeconds)
	failed := 0
	// One buffer holds every encoded result; each score keeps its own sub-slice.
	arena := make([]byte, 0, 128*len(results))
	for i, result := range results {
		row := rows[i]
		start := len(arena)
		var err error
		if arena, err = result.AppendJSON(arena); err != nil {
			return fmt.Errorf("encoding score of %s: %w", row.ID, err)
		}
		encoded := json.RawMessage(arena[start:len(arena):len(arena)])
		score := &dbsqlc.ScoreCopyParams{
			ModelID: row.ModelID, PerformedAt: row.PerformedAt, PredictionID: row.ID, Result: encoded,
			ScopeKey: row.ScopeKey, ScoredAt: now, SlotAt: row.SlotAt, Success: result.Success,
		}
		if result.Success {
			score.Value = &result.Value
		} else {
			score.FailedReason = &result.FailedReason
			failed++
		}
		if actual, ok := realised(items[i].GroundTruth); ok {
			score.Actual = &actual
		}
		scores[i] = score
		key := snapshotKey{row.ModelID, time.Unix(row.PerformedAt.Unix()/period*period, 0).UTC()}
		if !seen[key] {
			seen[key] = true
			dirty.ModelIDs = append(dirty.ModelIDs, key.modelID)
			dirty.Buckets = append(dirty.Buckets, key.bucket)
		}
	}
	if _, err := queries.ScoreCopy(ctx, tx, scores); err != nil {
		return fmt.Errorf("writing scores: %w", err)
	}
	if err := queries.SnapshotDirtyMark(ctx, tx, dirty); err != nil {
		return fmt.Errorf("marking snapshot buckets: %w", err)
	}
	w.deps.Metrics.Scored.WithLabelValues("success").Add(float64(len(results) - failed))
	w.deps.Metrics.Scored.WithLabelValues("failed").Add(float64(failed))
	return nil
}

// snapshotKey is a model's snapshot bucket.
type snapshotKey struct {
	modelID string
	bucket  time.Time
}

// snapshotBatch is how many dirty marks one transaction takes (duplicates included).
const snapshotBatch = 5000

// recomputeSnapshots rebuilds the snapshots of the buckets scoring marked dirty, merges
// the window metrics into them, commits the Merkle cycle and enqueues a leaderboard
// refresh, batch after batch until nothing is dirty.
func (w *ScoreWorker) recomputeSnapshots(ctx context.Context) error {
	for {
		n, err := postgres.WithTxV(ctx, w.deps.Pool, func(ctx context.Context, tx pgx.Tx) (int, error) {
			queries := dbsqlc.New()
			now := w.deps.now().UTC()
			taken, err := queries.SnapshotDirtyTake(ctx, tx, snapshotBatch)
			if err != nil {
				return 0, fmt.Errorf("taking dirty snapshot buckets: %w", err)
			}
			if len(taken) == 0 {
				return 0, nil
			}
			params := &dbsqlc.SnapshotRecomputeParams{
				PeriodSeconds: int32(w.deps.Config.SnapshotPeriodSeconds), Now: &now,
				ValueField: w.deps.Config.Crunch.Aggregation.ValueField,
			}
			for _, t := range taken {
				params.ModelIDs = append(params.ModelIDs, t.ModelID)
				params.Buckets = append(params.Buckets, t.Bucket)
			}
			var snapshots []*dbsqlc.Snapshot
			if w.deps.Scoring.Aggregator != nil {
				snapshots, err = w.aggregateSnapshots(ctx, tx, params)
			} else {
				snapshots, err = queries.SnapshotRecompute(ctx, tx, params)
			}
			if err != nil {
				return 0, fmt.Errorf("recomputing snapshots: %w", err)
			}
			if snapshots, err = w.mergeMetrics(ctx, tx, snapshots, now); err != nil {
				return 0, err
			}
			if err := CommitCycle(ctx, tx, snapshots, now); err != nil {
				return 0, fmt.Errorf("committing the Merkle cycle: %w", err)
			}
			if _, err := w.deps.insertTx(ctx, tx, LeaderboardRefreshArgs{}, leaderboardRefreshOpts(now)); err != nil {
				return 0, fmt.Errorf("enqueuing leaderboard refresh: %w", err)
			}
			return len(taken), nil
		})
		// Taken marks are deduplicated, so a full batch can come back smaller than
		// snapshotBatch: only an empty take means nothing is left.
		if err != nil || n == 0 {
			return err
		}
	}
}

// aggregateSnapshots is SnapshotRecompute with an operator's MODEL_SCORE_AGGREGATOR in
// place of the SQL mean: the scores of each dirty bucket, failed ones included, are given
// to the aggregator per model (the overall snapshot) and per model and scope. A failing
// aggregator leaves that snapshot as it was and is logged; the rest are written.
func (w *ScoreWorker) aggregateSnapshots(ctx context.Context, tx pgx.Tx, recompute *dbsqlc.SnapshotRecomputeParams) ([]*dbsqlc.Snapshot, error) {
	queries := dbsqlc.New()
	rows, err := queries.ScoreListByBuckets(ctx, tx, &dbsqlc.ScoreListByBucketsParams{
		ModelIDs: recompute.ModelIDs, Buckets: recompute.Buckets, PeriodSeconds: recompute.PeriodSeconds,
	})
	if err != nil {
		return nil, fmt.Errorf("reading the scores of dirty buckets: %w", err)
	}
	type group struct {
		model, scope string
		bucket       time.Time
	}
	var order []group
	results := map[group][]scoring.Result{}
	add := func(g group, r scoring.Result) {
		if _, ok := results[g]; !ok {
			order = append(order, g)
		}
		results[g] = append(results[g], r)
	}
	for _, row := range rows {
		result := scoring.Result{ModelID: row.ModelID, Success: row.Success, Value: row.Value, FailedReason: row.FailedReason}
		var dict map[string]any
		_ = json.Unmarshal(row.Result, &dict)
		for k, v := range dict {
			if k != "value" && k != "success" && k != "failed_reason" {
				if result.Extra == nil {
					result.Extra = map[string]any{}
				}
				result.Extra[k] = v
			}
		}
		add(group{row.ModelID, "", row.Bucket}, result)
		add(group{row.ModelID, row.ScopeKey, row.Bucket}, result)
	}
	upsert := &dbsqlc.SnapshotUpsertManyParams{
		PeriodSeconds: recompute.PeriodSeconds, Now: recompute.Now, ValueField: recompute.ValueField,
	}
	for _, g := range order {
		snapshot, err := w.deps.Scoring.Aggregator.Aggregate(ctx, results[g])
		if err != nil {
			w.deps.Logger.WarnContext(ctx, "Score: aggregator failed; snapshot left as it was",
				slog.String("model_id", g.model), slog.String("scope_key", g.scope), slog.Time("bucket", g.bucket), slog.String("error", err.Error()))
			continue
		}
		summary, err := json.Marshal(snapshot.Summary)
		if err != nil {
			return nil, fmt.Errorf("encoding the summary of %s: %w", g.model, err)
		}
		upsert.ModelIDs = append(upsert.ModelIDs, g.model)
		upsert.ScopeKeys = append(upsert.ScopeKeys, g.scope)
		upsert.Buckets = append(upsert.Buckets, g.bucket)
		// As in the SQL path, the count is of scored predictions; failed scores are not
		// predictions the model got credit or blame for.
		upsert.PredictionCounts = append(upsert.PredictionCounts, int32(snapshot.SuccessCount))
		upsert.Summaries = append(upsert.Summaries, summary)
	}
	if len(upsert.ModelIDs) == 0 {
		return nil, nil
	}
	return queries.SnapshotUpsertMany(ctx, tx, upsert)
}

// tickResolver returns how the predictions of one tick get their ground truth. The
// built-in resolver is the same for every prediction of a tick, so it runs once; an
// operator's resolver receives each prediction (as in the Python engine), with the
// window's records read once.
func (w *ScoreWorker) tickResolver(ctx context.Context, tx pgx.Tx, tick *dbsqlc.ScoreQueueClaimRow) (func(context.Context, *dbsqlc.PredictionListPendingByTicksRow) (scoring.Item, scoring.Resolution), error) {
	itemOf := func(row *dbsqlc.PredictionListPendingByTicksRow) (scoring.Item, bool) {
		var prediction map[string]any
		if err := json.Unmarshal(row.InferenceOutput, &prediction); err != nil || prediction == nil {
			return scoring.Item{}, false
		}
		return scoring.Item{ModelID: row.ModelID, Prediction: prediction, PredictionID: row.ID}, true
	}
	badOutput := scoring.Resolution{Code: "bad_output", Reason: "stored inference output is not an object"}
	withTruth := func(truth scoring.Resolution) func(context.Context, *dbsqlc.PredictionListPendingByTicksRow) (scoring.Item, scoring.Resolution) {
		return func(_ context.Context, row *dbsqlc.PredictionListPendingByTicksRow) (scoring.Item, scoring.Resolution) {
			item, ok := itemOf(row)
			if !ok {
				return item, badOutput
			}
			item.GroundTruth = truth.GroundTruth
			return item, truth
		}
	}

	// Horizon 0 resolves against the stored input, as the Python engine's immediate path.
	if !tick.ResolvableAt.After(tick.PerformedAt) {
		input, err := dbsqlc.New().InputGet(ctx, tx, tick.InputID)
		if err != nil {
			return nil, fmt.Errorf("reading input %s: %w", tick.InputID, err)
		}
		var raw map[string]any
		if err := json.Unmarshal(input.RawData, &raw); err != nil || raw == nil {
			return withTruth(scoring.Resolution{Code: "bad_input", Reason: "stored input is not an object"}), nil
		}
		return withTruth(scoring.Resolution{GroundTruth: raw}), nil
	}

	var scope map[string]any
	_ = json.Unmarshal(tick.Scope, &scope)
	subject, granularity := str(scope["subject"]), str(scope["granularity"])
	in := scoring.ResolveInput{PerformedAt: tick.PerformedAt, ResolvableAt: tick.ResolvableAt}
	if w.deps.Scoring.FullWindow {
		records, err := dbsqlc.New().FeedRecordListRange(ctx, tx, &dbsqlc.FeedRecordListRangeParams{
			Source: str(scope["source"]), Subject: subject, Kind: str(scope["kind"]), Granularity: granularity,
			StartTS: tick.PerformedAt, EndTS: tick.ResolvableAt, MaxRows: 100_000,
		})
		if err != nil {
			return nil, fmt.Errorf("reading the ground-truth window of tick %d/%s: %w", tick.PredictionConfigID, tick.SlotAt, err)
		}
		for _, r := range records {
			in.Records = append(in.Records, feedPoint(subject, r.TSEvent, r.Payload))
		}
	} else {
		if tick.HasFirst {
			in.Records = append(in.Records, feedPoint(subject, tick.FirstTS, tick.FirstPayload))
		}
		if tick.HasLast && (!tick.HasFirst || !tick.LastTS.Equal(tick.FirstTS)) {
			in.Records = append(in.Records, feedPoint(subject, tick.LastTS, tick.LastPayload))
		}
	}
	resolver := w.resolver(granularity)
	resolveOne := func(ctx context.Context, in scoring.ResolveInput) scoring.Resolution {
		resolution, err := resolver.Resolve(ctx, in)
		if err != nil {
			// A broken operator resolver is this prediction's problem, not the batch's.
			return scoring.Resolution{Code: "resolver_error", Reason: err.Error()}
		}
		return resolution
	}
	if _, builtin := resolver.(scoring.DefaultResolver); builtin {
		return withTruth(resolveOne(ctx, in)), nil
	}
	return func(ctx context.Context, row *dbsqlc.PredictionListPendingByTicksRow) (scoring.Item, scoring.Resolution) {
		item, ok := itemOf(row)
		if !ok {
			return item, badOutput
		}
		perPrediction := in
		perPrediction.Prediction = item.Prediction
		resolution := resolveOne(ctx, perPrediction)
		item.GroundTruth = resolution.GroundTruth
		return item, resolution
	}, nil
}

// resolver returns the configured resolver; the built-in one is specialised to the
// scope's granularity for its staleness guard.
func (w *ScoreWorker) resolver(granularity string) scoring.Resolver {
	if _, builtin := w.deps.Scoring.Resolver.(scoring.DefaultResolver); !builtin {
		return w.deps.Scoring.Resolver
	}
	step, _ := config.ParseDuration(granularity)
	return scoring.DefaultResolver{Config: scoring.GroundTruthConfig{
		Granularity: step, MaxStalenessFraction: w.deps.Scoring.MaxStalenessFraction,
	}}
}

func feedPoint(subject string, ts time.Time, payload json.RawMessage) scoring.FeedPoint {
	values := map[string]float64{}
	_ = json.Unmarshal(payload, &values)
	return scoring.FeedPoint{Subject: subject, TsEvent: ts, Values: values}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// scriptOptions are the limits operator scripts run under.
func scriptOptions() script.Options {
	return script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout}
}

// realised reads the outcome a prediction was scored against: the ground truth's
// actual_return, else its profit.
func realised(gt map[string]any) (float64, bool) {
	for _, key := range []string{"actual_return", "profit"} {
		if f, ok := gt[key].(float64); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	return 0, false
}

// mergeMetrics computes the configured metrics over the metric window for the models
// whose overall snapshots this cycle wrote, merges them into those snapshots, and returns
// the snapshots as stored (so their content hashes cover the metrics).
func (w *ScoreWorker) mergeMetrics(ctx context.Context, tx pgx.Tx, snapshots []*dbsqlc.Snapshot, now time.Time) ([]*dbsqlc.Snapshot, error) {
	sc := w.deps.Scoring
	if sc.Metrics == nil || len(sc.MetricNames) == 0 {
		return snapshots, nil
	}
	queries := dbsqlc.New()
	values, err := w.windowMetrics(ctx, tx, now)
	if err != nil {
		return nil, err
	}
	params := &dbsqlc.SnapshotMergeMetricsParams{}
	ids := make([]string, 0, len(snapshots))
	for _, s := range snapshots {
		ids = append(ids, s.ID)
		modelValues, ok := values[s.ModelID]
		if s.ScopeKey != "" || !ok {
			continue
		}
		encoded, err := json.Marshal(modelValues)
		if err != nil {
			return nil, fmt.Errorf("encoding metrics of %s: %w", s.ModelID, err)
		}
		params.IDs = append(params.IDs, s.ID)
		params.Metrics = append(params.Metrics, encoded)
	}
	if len(params.IDs) == 0 {
		return snapshots, nil
	}
	if err := queries.SnapshotMergeMetrics(ctx, tx, params); err != nil {
		return nil, fmt.Errorf("storing metrics: %w", err)
	}
	return queries.SnapshotListByIDs(ctx, tx, ids)
}

// windowMetrics returns every model's metrics over the metric window, from the cache when
// it is fresh enough.
func (w *ScoreWorker) windowMetrics(ctx context.Context, tx pgx.Tx, now time.Time) (map[string]map[string]float64, error) {
	w.metricsMu.Lock()
	defer w.metricsMu.Unlock()
	if w.metricsValues != nil && now.Sub(w.metricsAt) < metricsMaxAge && now.After(w.metricsAt) {
		return w.metricsValues, nil
	}
	sc := w.deps.Scoring
	rows, err := dbsqlc.New().MetricPointList(ctx, tx, now.Add(-sc.MetricWindow))
	if err != nil {
		return nil, fmt.Errorf("reading metric points: %w", err)
	}
	window := metric.Window{Models: map[string][]metric.Point{}}
	for _, r := range rows {
		window.Models[r.ModelID] = append(window.Models[r.ModelID], metric.Point{
			Actual: r.Actual, At: r.PerformedAt, Key: r.SlotAt.UTC().Format(time.RFC3339Nano) + "|" + r.ScopeKey,
			Scope: r.ScopeKey, Score: r.Score, Signal: r.Signal,
		})
	}
	// Models holds real models only (MetricPointList skips virtual ones); the first
	// ensemble's points are the reference of ensemble_correlation, contribution and fnc.
	if id, ok := referenceEnsemble(w.deps.Config); ok {
		points, err := dbsqlc.New().MetricEnsemblePointList(ctx, tx, &dbsqlc.MetricEnsemblePointListParams{
			ModelID: id, Since: now.Add(-sc.MetricWindow),
		})
		if err != nil {
			return nil, fmt.Errorf("reading ensemble metric points: %w", err)
		}
		for _, r := range points {
			window.Ensemble = append(window.Ensemble, metric.Point{
				Actual: r.Actual, At: r.PerformedAt, Key: r.SlotAt.UTC().Format(time.RFC3339Nano) + "|" + r.ScopeKey,
				Scope: r.ScopeKey, Score: r.Score, Signal: r.Signal,
			})
		}
	}
	result, err := sc.Metrics.Compute(ctx, sc.MetricNames, window)
	if err != nil {
		return nil, fmt.Errorf("computing metrics: %w", err)
	}
	for _, f := range result.Failures {
		w.deps.Logger.WarnContext(ctx, "Score: metric failed", slog.String("metric", f.Metric), slog.String("model_id", f.ModelID), slog.String("error", f.Err.Error()))
	}
	w.metricsAt, w.metricsValues = now, result.Values
	return result.Values, nil
}
