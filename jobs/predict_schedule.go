package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// PredictArgs asks every model about one scheduled prediction for one time slot. Slots
// are aligned to multiples of the schedule's interval since the Unix epoch, so every
// process computes the same slot and a restart fires only the slots not done yet.
type PredictArgs struct {
	ConfigID int64     `json:"config_id"`
	SlotAt   time.Time `json:"slot_at"`
}

// Kind is the River job kind.
func (PredictArgs) Kind() string { return "predict" }

// InsertOpts make a (config, slot) pair unique for as long as River keeps the job, so
// the feed trigger and the safety net can both enqueue it and it runs once.
func (PredictArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueuePredict, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// slotOf returns the start of the interval-aligned slot containing t.
func slotOf(t time.Time, interval time.Duration) time.Time {
	if interval <= 0 {
		return t
	}
	return time.Unix(0, t.UnixNano()/int64(interval)*int64(interval)).UTC()
}

// scheduleSubject is the subject a schedule asks about: its scope template's, else the
// first configured feed subject (the Python engine's default scope).
func (d *Deps) scheduleSubject(cfg *dbsqlc.ScheduledPredictionConfig) string {
	var scope map[string]any
	_ = json.Unmarshal(cfg.ScopeTemplate, &scope)
	if s, ok := scope["subject"].(string); ok && s != "" {
		return s
	}
	if s, ok := d.Config.Crunch.Scope["subject"].(string); ok && s != "" {
		return s
	}
	if len(d.Config.FeedSubjects) > 0 {
		return d.Config.FeedSubjects[0]
	}
	return ""
}

// enqueueDuePredictions runs in the feed transaction that stored records up to `newest`:
// every active schedule on this subject whose current slot now has its data gets its
// predict job, committed together with the data.
func (d *Deps) enqueueDuePredictions(ctx context.Context, tx pgx.Tx, scope FeedScope, newest time.Time) error {
	if scope.Source != d.Config.FeedSource || scope.Kind != d.Config.FeedKind || scope.Granularity != d.Config.FeedGranularity {
		return nil // only the configured feed drives predictions; other scopes are data
	}
	configs, err := dbsqlc.New().ScheduleListActive(ctx, tx)
	if err != nil {
		return fmt.Errorf("listing schedules: %w", err)
	}
	now := d.now().UTC()
	var params []river.InsertManyParams
	for _, cfg := range configs {
		if d.scheduleSubject(cfg) != scope.Subject {
			continue
		}
		interval := time.Duration(cfg.PredictionIntervalSeconds) * time.Second
		slot := slotOf(now, interval)
		// The record that makes a slot due is the first one at or after its start; older
		// pages (a catch-up) do not fire past slots.
		if newest.Before(slot.Add(-interval)) {
			continue
		}
		params = append(params, river.InsertManyParams{Args: PredictArgs{ConfigID: cfg.ID, SlotAt: slot}})
	}
	if len(params) == 0 {
		return nil
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("no River client in context: %w", err)
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("enqueuing predict jobs: %w", err)
	}
	return nil
}

// PredictScheduleArgs is the safety net: it enqueues the current slot of every active
// schedule that the feed has not triggered, so predictions still happen when a feed
// stalls (the input then records how old its data is).
type PredictScheduleArgs struct{}

// Kind is the River job kind.
func (PredictScheduleArgs) Kind() string { return "predict_schedule" }

// InsertOpts keep one such job at a time.
func (PredictScheduleArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueuePredict, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueWhileActive}}
}

// scheduleLag is how long after a slot starts the safety net fires it when the feed has
// not: long enough for a healthy feed poll to come first.
func scheduleLag(interval time.Duration) time.Duration {
	return min(max(interval/4, 500*time.Millisecond), 5*time.Second)
}

// PredictScheduleWorker enqueues due slots.
type PredictScheduleWorker struct {
	river.WorkerDefaults[PredictScheduleArgs]
	deps *Deps
}

// Work inserts the current slot of each schedule once it is past its lag.
func (w *PredictScheduleWorker) Work(ctx context.Context, job *river.Job[PredictScheduleArgs]) error {
	configs, err := dbsqlc.New().ScheduleListActive(ctx, w.deps.Pool)
	if err != nil {
		return fmt.Errorf("listing schedules: %w", err)
	}
	now := w.deps.now().UTC()
	var params []river.InsertManyParams
	for _, cfg := range configs {
		interval := time.Duration(cfg.PredictionIntervalSeconds) * time.Second
		slot := slotOf(now, interval)
		if now.Sub(slot) < scheduleLag(interval) {
			continue
		}
		params = append(params, river.InsertManyParams{Args: PredictArgs{ConfigID: cfg.ID, SlotAt: slot}})
	}
	if len(params) == 0 {
		return nil
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("no River client in context: %w", err)
	}
	if _, err := client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueuing predict jobs: %w", err)
	}
	return nil
}
