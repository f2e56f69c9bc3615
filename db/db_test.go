package db_test

import (
	"context"
	"database/sql"
	"io/fs"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/peterldowns/pgtestdb"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/db"
	"github.com/crunchnode/crunch-node/internal/dbtest"
)

// emptyMigrator gives a test an empty database, so the test can run Migrate itself.
type emptyMigrator struct{}

func (emptyMigrator) Hash() (string, error) { return "empty-v1", nil }
func (emptyMigrator) Migrate(context.Context, *sql.DB, pgtestdb.Config) error {
	return nil
}

func emptyPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	conf := pgtestdb.Custom(t, dbtest.ServerConfig(t), emptyMigrator{})
	pool, err := pgxpool.New(context.Background(), conf.URL())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)

	t.Run("ConcurrentRunsApplyOnce", func(t *testing.T) {
		t.Parallel()
		pool := emptyPool(t)

		var wg sync.WaitGroup
		results := make([]*db.Result, 3)
		errs := make([]error, 3)
		for i := range results {
			wg.Go(func() { results[i], errs[i] = db.Migrate(ctx, pool, logger) })
		}
		wg.Wait()

		applied := 0
		for i := range results {
			require.NoError(t, errs[i])
			applied += len(results[i].Ours)
		}
		require.Equal(t, countMigrations(t), applied, "each migration applied exactly once across the runs")
	})

	t.Run("SecondRunIsNoOp", func(t *testing.T) {
		t.Parallel()
		pool := emptyPool(t)

		first, err := db.Migrate(ctx, pool, logger)
		require.NoError(t, err)
		require.NotEmpty(t, first.Ours)
		require.NotEmpty(t, first.River)

		second, err := db.Migrate(ctx, pool, logger)
		require.NoError(t, err)
		require.Empty(t, second.Ours)
		require.Empty(t, second.River)
	})

	t.Run("CreatesEveryTable", func(t *testing.T) {
		t.Parallel()
		pool := dbtest.NewPool(t)
		for _, table := range []string{
			"backfill_jobs", "checkpoints", "feed_ingestion_state", "feed_records", "inputs",
			"leaderboards", "merkle_cycles", "merkle_nodes", "models", "predictions",
			"river_job", "river_leader", "river_queue", "scheduled_prediction_configs",
			"scores", "snapshots",
		} {
			var found bool
			require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&found))
			require.True(t, found, "table %s", table)
		}
	})
}

func countMigrations(t *testing.T) int {
	t.Helper()
	entries, err := fs.ReadDir(db.Migrations(), ".")
	require.NoError(t, err)
	return len(entries)
}

// TestMigrateDivergedDatabase: a database migrated by another build (here: one migration
// unapplied below the newest) is refused with what to do about it.
func TestMigrateDivergedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyPool(t)
	_, err := db.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "DELETE FROM goose_db_version WHERE version_id = 2")
	require.NoError(t, err)

	_, err = db.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "crunch-node migrate --reset")
}
