package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/jsonvalue"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/predict"
)

// Predicting is what the predict worker needs beyond the database: the model runner
// (kept connected by the predict role's model source) and the operator callables that
// build the model input (INFERENCE_INPUT_BUILDER) and judge each answer
// (INFERENCE_OUTPUT_VALIDATOR).
type Predicting struct {
	Input     predict.InputBuilder
	Runner    *modelrunner.Runner
	Symbols   feed.SymbolMap
	Validator predict.Validator
}

// PredictWorker runs one tick: it builds the input from the newest feed records, sends
// feed_update to every ready model, calls the configured method, and stores every model's
// prediction (PENDING, FAILED with its reason, or ABSENT) with the job's completion in one
// transaction. A retried tick stores nothing twice: ids are deterministic per (model,
// scope, slot) and the insert ignores conflicts.
type PredictWorker struct {
	river.WorkerDefaults[PredictArgs]
	deps *Deps
}

// Timeout covers two model calls at their deadline plus the database work; the
// configuration keeps it inside the rescue window.
func (w *PredictWorker) Timeout(*river.Job[PredictArgs]) time.Duration {
	return w.deps.Config.PredictJobTimeout()
}

// Work runs the tick.
func (w *PredictWorker) Work(ctx context.Context, job *river.Job[PredictArgs]) error {
	p := w.deps.Predicting
	if p == nil || p.Runner == nil {
		return errors.New("this process has no model runner (predict role)")
	}
	started := time.Now()
	queries := dbsqlc.New()
	schedule, err := queries.ScheduleGet(ctx, w.deps.Pool, job.Args.ConfigID)
	if err != nil {
		if errors.Is(postgres.Interpret(err), postgres.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("reading schedule %d: %w", job.Args.ConfigID, err)
	}
	if !schedule.Active {
		return nil
	}
	cfg := w.deps.Config
	horizon := time.Duration(schedule.ResolveHorizonSeconds) * time.Second
	var template map[string]any
	_ = json.Unmarshal(schedule.ScopeTemplate, &template)
	scope := predict.BuildScope(cfg.Crunch.Scope, template, horizon, predict.FeedDefaults{
		Granularity: cfg.FeedGranularity, Kind: cfg.FeedKind, Source: cfg.FeedSource, Subject: w.deps.scheduleSubject(schedule),
	})
	subject := str(scope["subject"])

	window, err := w.deps.inputWindow(ctx, w.deps.Pool, FeedScope{
		Granularity: str(scope["granularity"]), Kind: str(scope["kind"]), Source: str(scope["source"]), Subject: subject,
	}, int32(cfg.FeedCandlesWindow))
	if err != nil {
		return fmt.Errorf("reading the input window: %w", err)
	}
	tick := &predict.Tick{
		Scope: scope, ScopeKey: schedule.ScopeKey, Slot: job.Args.SlotAt, Subject: subject, Symbol: p.Symbols.Symbol(subject),
	}
	// A builder that fails cannot be worked around (models must not get a made-up
	// input), so the job fails and River retries it; nothing has been sent yet.
	input, err := p.Input.Build(ctx, window, tick)
	if err != nil {
		return fmt.Errorf("tick %s at %s: %w", schedule.ScopeKey, job.Args.SlotAt.UTC().Format(time.RFC3339), err)
	}
	tick.Input = input
	inputJSON, err := jsonvalue.Marshal(input)
	if err != nil {
		return fmt.Errorf("encoding input: %w", err)
	}
	feedUpdate, err := modelrunner.Prepare("feed_update", json.RawMessage(inputJSON))
	if err != nil {
		return fmt.Errorf("encoding feed_update: %w", err)
	}
	args, err := predict.Arguments(cfg.Crunch.CallMethod.Args, scope)
	if err != nil {
		return fmt.Errorf("building arguments of %s: %w", schedule.ScopeKey, err)
	}
	call, err := modelrunner.Prepare(cfg.Crunch.CallMethod.Method, args...)
	if err != nil {
		return fmt.Errorf("calling %s: %w", cfg.Crunch.CallMethod.Method, err)
	}
	inputBuilt := time.Now()

	// While the models compute: store the input and read the model list (only
	// needed for the ABSENT rows). The input has its own transaction, committed
	// before the predictions' transaction begins, so every prediction's input
	// exists (the guarantee migration 0007 took from a foreign key), and the
	// tick's transaction, on the critical path, is left with the predictions.
	inputID := predict.InputID(schedule.ID, job.Args.SlotAt)
	inputMeta, _ := json.Marshal(map[string]any{"records": len(window), "scope_key": schedule.ScopeKey})
	type beforeStore struct {
		models []*dbsqlc.ModelStateListRow
		err    error
	}
	beforeStoreCh := make(chan beforeStore, 1)
	go func() {
		// Synchronously: the predictions' transaction builds on this commit, and could
		// otherwise commit after a Postgres crash that lost it.
		if err := queries.InputInsert(ctx, w.deps.Pool, &dbsqlc.InputInsertParams{
			ID: inputID, Meta: inputMeta, RawData: inputJSON, ReceivedAt: w.deps.now().UTC(), Subject: subject,
		}); err != nil {
			beforeStoreCh <- beforeStore{err: fmt.Errorf("storing input: %w", err)}
			return
		}
		models, err := queries.ModelStateList(ctx, w.deps.Pool)
		if err != nil {
			err = fmt.Errorf("listing models: %w", err)
		}
		beforeStoreCh <- beforeStore{models: models, err: err}
	}()

	// Each model gets its feed_update and then, as soon as it has answered,
	// its predict: no model waits for the slowest feed_update of the others.
	answers := p.Runner.CallSequence(ctx, feedUpdate, call)
	predicted := time.Now()
	results := answers[1]
	// feed_update's stage is until the last model answered it; the rest of
	// the calls' time is model execution.
	var feedUpdateTook time.Duration
	for _, r := range answers[0] {
		feedUpdateTook = max(feedUpdateTook, r.ExecTime)
	}
	feedUpdated := inputBuilt.Add(min(feedUpdateTook, predicted.Sub(inputBuilt)))

	outcomes := make([]predict.Outcome, 0, len(results))
	answered := make(map[string]bool, len(results))
	for _, result := range results {
		outcomes = append(outcomes, predict.Classify(ctx, result, p.Validator, tick))
		answered[result.Model.ID] = true
	}
	known := <-beforeStoreCh
	if known.err != nil {
		return known.err
	}
	mirrored := make(map[string]bool, len(known.models))
	for _, m := range known.models {
		mirrored[m.ID] = true
		if m.State == string(modelrunner.StateRunning) && !answered[m.ID] {
			outcomes = append(outcomes, predict.Outcome{
				ModelID: m.ID, Status: predict.StatusAbsent, Output: map[string]any{},
				Reason: "model was not ready to answer",
			})
		}
	}
	unmirrored := unmirroredModels(results, mirrored)

	now := w.deps.now().UTC()
	timing := map[string]any{
		"data_loaded_us":       inputBuilt.Sub(started).Microseconds(),
		"feed_update_us":       feedUpdated.Sub(inputBuilt).Microseconds(),
		"model_execution_us":   predicted.Sub(feedUpdated).Microseconds(),
		"job_scheduled_at":     job.ScheduledAt,
		"pickup_delay_us":      started.Sub(job.ScheduledAt).Microseconds(),
		"models_called":        len(results),
		"models_dispatched_at": inputBuilt.UTC(),
		"models_completed_at":  predicted.UTC(),
		"input_window_records": len(window),
	}
	meta := map[string]any{"timing": timing}
	if len(window) > 0 {
		meta["data_age_ms"] = now.Sub(window[len(window)-1].TsEvent).Milliseconds()
	}
	metaJSON, _ := json.Marshal(meta)
	scopeJSON, _ := json.Marshal(scope)

	params := &dbsqlc.PredictionInsertManyParams{
		InputID: inputID, Meta: metaJSON, PerformedAt: now, PredictionConfigID: schedule.ID,
		ResolvableAt: now.Add(horizon), Scope: scopeJSON, ScopeKey: schedule.ScopeKey, SlotAt: job.Args.SlotAt,
	}
	for _, o := range outcomes {
		output, err := jsonvalue.Marshal(o.Output)
		if err != nil {
			output = json.RawMessage(`{}`)
		}
		params.ExecTimeMs = append(params.ExecTimeMs, o.ExecTimeMs)
		params.FailedReasons = append(params.FailedReasons, o.Reason)
		params.IDs = append(params.IDs, predict.PredictionID(o.Status, o.ModelID, schedule.ScopeKey, job.Args.SlotAt))
		params.InferenceOutputs = append(params.InferenceOutputs, output)
		params.ModelIDs = append(params.ModelIDs, o.ModelID)
		params.Statuses = append(params.Statuses, o.Status)
	}
	// The predictions and the score queue row go to the server in one round trip; only
	// the job's completion (River's query) and the commit need one each.
	var batch postgres.Batch
	// The commit does not wait for the WAL flush (0.4–0.6 ms here): the transaction
	// completes the job too, so a Postgres crash that loses it leaves the job running
	// (or available, if its fetch was lost as well) and River runs the tick again;
	// nothing is lost that a crash a moment earlier would not have lost.
	if err := batch.Queue("committing asynchronously", func(db *postgres.Batch) error {
		return queries.TransactionCommitAsync(ctx, db)
	}); err != nil {
		return err
	}
	if len(unmirrored.IDs) > 0 {
		if err := batch.Queue("storing the rows of models not mirrored yet", func(db *postgres.Batch) error {
			return queries.ModelInsertMissing(ctx, db, unmirrored)
		}); err != nil {
			return err
		}
	}
	if len(params.IDs) > 0 {
		if err := batch.Queue(fmt.Sprintf("storing %d predictions", len(params.IDs)), func(db *postgres.Batch) error {
			_, err := queries.PredictionInsertMany(ctx, db, params)
			return err
		}); err != nil {
			return err
		}
		// The tick waits for scoring as one unit: the score worker claims it once its
		// horizon has passed. A tick without pending predictions is dropped from the
		// queue by the first score run that sees it.
		if err := batch.Queue("queueing the tick for scoring", func(db *postgres.Batch) error {
			return queries.ScoreQueueInsert(ctx, db, &dbsqlc.ScoreQueueInsertParams{
				InputID: inputID, PerformedAt: now, PredictionConfigID: schedule.ID,
				ResolvableAt: params.ResolvableAt, Scope: scopeJSON, SlotAt: job.Args.SlotAt,
			})
		}); err != nil {
			return err
		}
	}
	err = postgres.WithTx(ctx, w.deps.Pool, func(ctx context.Context, tx pgx.Tx) error {
		if err := w.deps.ensurePartitions(ctx, tx, "predictions", job.Args.SlotAt, job.Args.SlotAt); err != nil {
			return err
		}
		if err := w.deps.ensurePartitions(ctx, tx, "scores", job.Args.SlotAt, job.Args.SlotAt); err != nil {
			return err
		}
		if err := batch.Send(ctx, tx); err != nil {
			return err
		}
		w.storeEnsembles(ctx, tx, params, outcomes)
		if _, err := river.JobCompleteTx[*riverDriver](ctx, tx, job); err != nil {
			return fmt.Errorf("completing job: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	persisted := time.Now()
	if w.deps.TickCommitted != nil {
		w.deps.TickCommitted(job.Args, persisted)
	}

	m := w.deps.Metrics.PredictStage
	m.WithLabelValues("pickup").Observe(started.Sub(job.ScheduledAt).Seconds())
	m.WithLabelValues("data_loading").Observe(inputBuilt.Sub(started).Seconds())
	m.WithLabelValues("feed_update").Observe(feedUpdated.Sub(inputBuilt).Seconds())
	m.WithLabelValues("model_execution").Observe(predicted.Sub(feedUpdated).Seconds())
	m.WithLabelValues("persistence").Observe(persisted.Sub(predicted).Seconds())
	m.WithLabelValues("end_to_end").Observe(persisted.Sub(started).Seconds())
	for _, status := range params.Statuses {
		w.deps.Metrics.Predictions.WithLabelValues(status).Inc()
	}
	w.deps.Logger.DebugContext(ctx, "Predict: tick stored", slog.String("scope_key", schedule.ScopeKey),
		slog.Time("slot", job.Args.SlotAt), slog.Int("predictions", len(params.IDs)),
		slog.Int("pending", countOf(params.Statuses, predict.StatusPending)),
		slog.Duration("took", persisted.Sub(started)))
	return nil
}

// unmirroredModels lists the models that answered but have no row yet: the model source's
// mirror writes rows when the source changes, and a tick can call a model before that
// (or after a mirror that failed). Predictions have no foreign key to models (migration
// 0007), so the tick writes these rows itself and every prediction keeps its model.
func unmirroredModels(results []modelrunner.Result, mirrored map[string]bool) *dbsqlc.ModelInsertMissingParams {
	missing := &dbsqlc.ModelInsertMissingParams{}
	for _, r := range results {
		m := r.Model
		if mirrored[m.ID] {
			continue
		}
		mirrored[m.ID] = true
		missing.DeploymentIdentifiers = append(missing.DeploymentIdentifiers, m.DeploymentID)
		missing.IDs = append(missing.IDs, m.ID)
		missing.Names = append(missing.Names, m.Name)
		missing.PlayerIds = append(missing.PlayerIds, m.PlayerID)
		missing.PlayerNames = append(missing.PlayerNames, m.PlayerName)
		missing.States = append(missing.States, string(m.State))
	}
	return missing
}

func countOf(statuses []string, status string) int {
	n := 0
	for _, s := range statuses {
		if s == status {
			n++
		}
	}
	return n
}

// MirrorModels writes a model source's snapshot into the models table, so predictions
// can reference them and reports can name them.
func MirrorModels(ctx context.Context, db dbsqlc.DBTX, models []modelrunner.ModelInfo) error {
	queries := dbsqlc.New()
	ids := make([]string, 0, len(models))
	for _, m := range models {
		meta, _ := json.Marshal(map[string]any{"host": m.Host, "port": m.Port})
		if _, err := queries.ModelUpsert(ctx, db, &dbsqlc.ModelUpsertParams{
			DeploymentIdentifier: m.DeploymentID, ID: m.ID, Meta: meta, Name: m.Name,
			PlayerID: m.PlayerID, PlayerName: m.PlayerName, State: string(m.State),
		}); err != nil {
			return fmt.Errorf("mirroring model %s: %w", m.ID, err)
		}
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	if _, err := queries.ModelSetStateExcept(ctx, db, &dbsqlc.ModelSetStateExceptParams{
		State: string(modelrunner.StateStopped), KeepIDs: ids,
	}); err != nil {
		return fmt.Errorf("marking vanished models stopped: %w", err)
	}
	return nil
}
