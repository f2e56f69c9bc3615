// Package testfactory inserts fixture rows for tests through the same sqlc queries the
// node uses. Each builder takes an Opts struct of pointers: nil fields get sensible
// defaults, so a test states only what it cares about.
package testfactory

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

var sequence atomic.Int64

func next() int64 { return sequence.Add(1) }

// Ptr returns a pointer to v, for Opts fields.
func Ptr[T any](v T) *T { return &v }

func or[T any](p *T, fallback T) T {
	if p != nil {
		return *p
	}
	return fallback
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	return data
}

// ModelOpts configures Model.
type ModelOpts struct {
	ID         *string
	Name       *string
	PlayerName *string
	State      *string
	Virtual    *bool
}

// Model inserts a model.
func Model(ctx context.Context, t testing.TB, db dbsqlc.DBTX, opts *ModelOpts) *dbsqlc.Model {
	t.Helper()
	if opts == nil {
		opts = &ModelOpts{}
	}
	n := next()
	id := or(opts.ID, fmt.Sprintf("model-%d", n))
	model, err := dbsqlc.New().ModelUpsert(ctx, db, &dbsqlc.ModelUpsertParams{
		ID:         id,
		Name:       or(opts.Name, "name-"+id),
		PlayerID:   "player-" + id,
		PlayerName: or(opts.PlayerName, "cruncher-"+id),
		State:      or(opts.State, "RUNNING"),
		Virtual:    or(opts.Virtual, false),
	})
	require.NoError(t, err)
	return model
}

// ScheduleOpts configures Schedule.
type ScheduleOpts struct {
	Horizon  *time.Duration
	Interval *time.Duration
	ScopeKey *string
	Scope    map[string]any
}

// Schedule inserts an active scheduled prediction config.
func Schedule(ctx context.Context, t testing.TB, db dbsqlc.DBTX, opts *ScheduleOpts) *dbsqlc.ScheduledPredictionConfig {
	t.Helper()
	if opts == nil {
		opts = &ScheduleOpts{}
	}
	scope := opts.Scope
	if scope == nil {
		scope = map[string]any{"subject": "BTCUSDT"}
	}
	cfg, err := dbsqlc.New().ScheduleUpsert(ctx, db, &dbsqlc.ScheduleUpsertParams{
		Active:                    true,
		Meta:                      json.RawMessage(`{}`),
		PredictionIntervalSeconds: int32(or(opts.Interval, 15*time.Second) / time.Second),
		ResolveHorizonSeconds:     int32(or(opts.Horizon, 60*time.Second) / time.Second),
		ScopeKey:                  or(opts.ScopeKey, fmt.Sprintf("scope-%d", next())),
		ScopeTemplate:             mustJSON(t, scope),
	})
	require.NoError(t, err)
	return cfg
}

// Input inserts a model input and returns its id.
func Input(ctx context.Context, t testing.TB, db dbsqlc.DBTX, at time.Time) string {
	t.Helper()
	id := fmt.Sprintf("INP_%d", next())
	require.NoError(t, dbsqlc.New().InputInsert(ctx, db, &dbsqlc.InputInsertParams{
		ID: id, Meta: json.RawMessage(`{}`), RawData: json.RawMessage(`{"symbol":"BTC"}`), ReceivedAt: at, Subject: "BTCUSDT",
	}))
	return id
}

// FeedCandles inserts one closed candle per step from start with the given closes, on the
// scope synthetic/BTCUSDT/candle/1s unless the scope says otherwise.
func FeedCandles(ctx context.Context, t testing.TB, db dbsqlc.DBTX, scope [4]string, start time.Time, step time.Duration, closes []float64) {
	t.Helper()
	if scope == [4]string{} {
		scope = [4]string{"synthetic", "BTCUSDT", "candle", "1s"}
	}
	params := &dbsqlc.FeedRecordUpsertManyParams{
		Source: scope[0], Subject: scope[1], Kind: scope[2], Granularity: scope[3],
	}
	prev := closes[0]
	for i, c := range closes {
		params.TSEvents = append(params.TSEvents, start.Add(time.Duration(i)*step))
		params.Payloads = append(params.Payloads, mustJSON(t, map[string]float64{
			"open": prev, "high": max(prev, c), "low": min(prev, c), "close": c, "volume": 1,
		}))
		params.Metas = append(params.Metas, json.RawMessage(`{}`))
		prev = c
	}
	_, err := dbsqlc.New().FeedRecordUpsertMany(ctx, db, params)
	require.NoError(t, err)
}

// PredictionOpts configures Prediction.
type PredictionOpts struct {
	Horizon     *time.Duration
	ModelID     string
	Output      map[string]any
	PerformedAt *time.Time
	ScheduleID  int64
	ScopeKey    *string
	Scope       map[string]any
	Status      *string
}

// Prediction inserts one prediction (and its input) and returns its id and slot.
func Prediction(ctx context.Context, t testing.TB, db dbsqlc.DBTX, opts *PredictionOpts) (string, time.Time) {
	t.Helper()
	performed := or(opts.PerformedAt, time.Now().UTC().Truncate(time.Second))
	horizon := or(opts.Horizon, time.Minute)
	scope := opts.Scope
	if scope == nil {
		scope = map[string]any{"source": "synthetic", "subject": "BTCUSDT", "kind": "candle", "granularity": "1s"}
	}
	output := opts.Output
	if output == nil {
		output = map[string]any{"value": 1.0}
	}
	id := fmt.Sprintf("PRE_%s_%d", opts.ModelID, next())
	inputID := Input(ctx, t, db, performed)
	slot := performed.Add(time.Duration(next()) * time.Microsecond)
	_, err := dbsqlc.New().PredictionInsertMany(ctx, db, &dbsqlc.PredictionInsertManyParams{
		ExecTimeMs:         []float64{1},
		FailedReasons:      []string{""},
		IDs:                []string{id},
		InferenceOutputs:   []json.RawMessage{mustJSON(t, output)},
		InputID:            inputID,
		Metas:              []json.RawMessage{json.RawMessage(`{}`)},
		ModelIDs:           []string{opts.ModelID},
		PerformedAt:        performed,
		PredictionConfigID: opts.ScheduleID,
		ResolvableAt:       performed.Add(horizon),
		Scope:              mustJSON(t, scope),
		ScopeKey:           or(opts.ScopeKey, "scope"),
		SlotAt:             slot,
		Statuses:           []string{or(opts.Status, "PENDING")},
	})
	require.NoError(t, err)
	require.NoError(t, dbsqlc.New().ScoreQueueInsert(ctx, db, &dbsqlc.ScoreQueueInsertParams{
		InputID: inputID, PerformedAt: performed, PredictionConfigID: opts.ScheduleID,
		ResolvableAt: performed.Add(horizon), Scope: mustJSON(t, scope), SlotAt: slot,
	}))
	return id, slot
}

// ScoreOpts configures Score.
type ScoreOpts struct {
	ModelID      string
	PerformedAt  time.Time
	PredictionID string
	// Reason makes the score a failed one.
	Reason   string
	Result   map[string]float64
	ScopeKey string
	Slot     time.Time
}

// Score writes a score for a prediction as the score worker does (without marking the
// prediction or recomputing snapshots).
func Score(ctx context.Context, t testing.TB, db dbsqlc.DBTX, opts *ScoreOpts) {
	t.Helper()
	score := &dbsqlc.ScoreCopyParams{
		ModelID: opts.ModelID, PerformedAt: opts.PerformedAt, PredictionID: opts.PredictionID,
		Result: mustJSON(t, opts.Result), ScopeKey: opts.ScopeKey, ScoredAt: time.Now().UTC(),
		SlotAt: opts.Slot, Success: opts.Reason == "",
	}
	if opts.Reason == "" {
		score.Value = Ptr(opts.Result["value"])
	} else {
		score.FailedReason = &opts.Reason
	}
	_, err := dbsqlc.New().ScoreCopy(ctx, db, []*dbsqlc.ScoreCopyParams{score})
	require.NoError(t, err)
}

// RefreshLeaderboard refreshes the leaderboard view as of now (nil: the database's clock)
// with the SQL ranking, as the refresh job does without a ranker.
func RefreshLeaderboard(ctx context.Context, t testing.TB, db dbsqlc.DBTX, now *time.Time) {
	t.Helper()
	require.NoError(t, dbsqlc.New().LeaderboardRefreshPrepare(ctx, db, &dbsqlc.LeaderboardRefreshPrepareParams{Now: now}))
	require.NoError(t, dbsqlc.New().LeaderboardRefresh(ctx, db))
}
