package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

// SyncConfig mirrors the parts of crunch_config.yaml that SQL needs into the database, by
// diff: scheduled predictions are upserted by scope_key (ids never change) and removed ones
// are deactivated, never deleted, because predictions reference them; the leaderboard
// settings row is rewritten. Every process runs it on start; it is idempotent.
func SyncConfig(ctx context.Context, db postgres.Beginner, cfg *config.Config, logger *slog.Logger) error {
	return postgres.WithTx(ctx, db, func(ctx context.Context, tx pgx.Tx) error {
		queries := dbsqlc.New()
		keep := make([]string, 0, len(cfg.Crunch.ScheduledPredictions))
		for _, sp := range cfg.Crunch.ScheduledPredictions {
			scope, err := json.Marshal(nonNilMap(sp.Scope))
			if err != nil {
				return fmt.Errorf("encoding scope of %s: %w", sp.ScopeKey, err)
			}
			meta, err := json.Marshal(nonNilMap(sp.Meta))
			if err != nil {
				return fmt.Errorf("encoding meta of %s: %w", sp.ScopeKey, err)
			}
			if _, err := queries.ScheduleUpsert(ctx, tx, &dbsqlc.ScheduleUpsertParams{
				Active:                    sp.IsActive(),
				Meta:                      meta,
				PredictionIntervalSeconds: int32(sp.PredictionInterval.Seconds()),
				ResolveHorizonSeconds:     int32(sp.ResolveHorizon.Seconds()),
				ScopeKey:                  sp.ScopeKey,
				ScopeTemplate:             scope,
				SortOrder:                 int32(sp.Order),
			}); err != nil {
				return fmt.Errorf("synchronising schedule %s: %w", sp.ScopeKey, err)
			}
			keep = append(keep, sp.ScopeKey)
		}
		deactivated, err := queries.ScheduleDeactivateExcept(ctx, tx, &dbsqlc.ScheduleDeactivateExceptParams{Keep: keep})
		if err != nil {
			return fmt.Errorf("deactivating removed schedules: %w", err)
		}
		if deactivated > 0 {
			logger.InfoContext(ctx, "Schedules removed from the config were deactivated", slog.Int64("count", deactivated))
		}

		agg := cfg.Crunch.Aggregation
		type window struct {
			Name    string `json:"name"`
			Seconds int    `json:"seconds"`
		}
		windows := make([]window, len(agg.Windows))
		for i, w := range agg.Windows {
			windows[i] = window{Name: w.Name, Seconds: w.Duration.Seconds()}
		}
		windowsJSON, err := json.Marshal(windows)
		if err != nil {
			return fmt.Errorf("encoding windows: %w", err)
		}
		if err := queries.LeaderboardSettingsSync(ctx, tx, &dbsqlc.LeaderboardSettingsSyncParams{
			MinPredictionsToRank: int32(agg.MinPredictionsToRank),
			RankingDirection:     agg.RankingDirection,
			RankingKey:           agg.RankingKey,
			ValueField:           agg.ValueField,
			Windows:              windowsJSON,
		}); err != nil {
			return fmt.Errorf("synchronising leaderboard settings: %w", err)
		}
		return syncEnsembles(ctx, tx, cfg)
	})
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
