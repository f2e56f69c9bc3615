package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

func TestMaintenance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupRiver(t, nil, nil)
	model := testfactory.Model(ctx, t, b.pool, nil)
	old := time.Now().UTC().Add(-200 * 24 * time.Hour)
	for _, at := range []time.Time{old, time.Now().UTC().Truncate(time.Hour)} {
		_, err := b.pool.Exec(ctx, `INSERT INTO snapshots (id, model_id, period_start, period_end, prediction_count, result_summary)
			VALUES ($1, $2, $3::timestamptz, $3::timestamptz + interval '1 hour', 1, '{}')`, "SNAP_"+at.Format("20060102"), model.ID, at)
		require.NoError(t, err)
	}
	_, err := dbsqlc.New().LeaderboardHistoryAppend(ctx, b.pool, &dbsqlc.LeaderboardHistoryAppendParams{Now: &old})
	require.NoError(t, err)
	// A partition far in the past, as retention finds them.
	_, err = dbsqlc.New().PartitionEnsure(ctx, b.pool, &dbsqlc.PartitionEnsureParams{Parent: "feed_records", Day: old})
	require.NoError(t, err)

	b.runJob(t, MaintenanceArgs{})

	var snapshots, history int
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM snapshots").Scan(&snapshots))
	require.Equal(t, 1, snapshots, "the expired snapshot is pruned, the recent one kept")
	var totalPredictions, totalSnapshots int64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT prediction_count, snapshot_count FROM snapshot_totals WHERE model_id = $1", model.ID).
		Scan(&totalPredictions, &totalSnapshots))
	require.Equal(t, [2]int64{1, 1}, [2]int64{totalPredictions, totalSnapshots}, "the leaderboard's totals follow the prune")
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT count(*) FROM leaderboards").Scan(&history))
	require.Zero(t, history)
	parts, err := dbsqlc.New().PartitionList(ctx, b.pool, "feed_records")
	require.NoError(t, err)
	for _, p := range parts {
		require.False(t, p.Day.Before(time.Now().UTC().Add(-100*24*time.Hour)), "expired partition %s dropped", p.PartitionName)
	}
	require.GreaterOrEqual(t, len(parts), 7, "partitions a week ahead exist")
}
