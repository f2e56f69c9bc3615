package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

func TestBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	queries := dbsqlc.New()

	// queueInput queues the insert of one input; raw is its raw_data, which the server
	// refuses when it is not JSON.
	queueInput := func(t *testing.T, b *postgres.Batch, id, raw string) {
		t.Helper()
		require.NoError(t, b.Queue("storing "+id, func(db *postgres.Batch) error {
			return queries.InputInsert(ctx, db, &dbsqlc.InputInsertParams{
				ID: id, Meta: json.RawMessage(`{}`), RawData: json.RawMessage(raw), ReceivedAt: time.Now(), Subject: "BTCUSDT",
			})
		}))
	}
	inputIDs := func(t *testing.T, db *pgxpool.Pool) []string {
		t.Helper()
		rows, err := db.Query(ctx, "SELECT id FROM inputs ORDER BY id")
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return ids
	}

	t.Run("StoresEveryStatementInTheTransaction", func(t *testing.T) {
		t.Parallel()
		pool := dbtest.NewPool(t)
		var batch postgres.Batch
		queueInput(t, &batch, "INP_a", `{}`)
		queueInput(t, &batch, "INP_b", `{"x": 1}`)
		require.Equal(t, 2, batch.Len())

		require.NoError(t, postgres.WithTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
			return batch.Send(ctx, tx)
		}))
		require.Equal(t, []string{"INP_a", "INP_b"}, inputIDs(t, pool))
	})

	t.Run("NamesTheRefusedStatementAndStoresNothing", func(t *testing.T) {
		t.Parallel()
		pool := dbtest.NewPool(t)
		var batch postgres.Batch
		queueInput(t, &batch, "INP_a", `{}`)
		queueInput(t, &batch, "INP_b", `not json`)
		queueInput(t, &batch, "INP_c", `{}`)

		err := postgres.WithTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
			return batch.Send(ctx, tx)
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		require.Regexp(t, `^storing INP_b: `, err.Error())
		require.Empty(t, inputIDs(t, pool))
	})

	t.Run("NamesTheStatementTheServerCannotPrepare", func(t *testing.T) {
		t.Parallel()
		pool := dbtest.NewPool(t)
		var batch postgres.Batch
		queueInput(t, &batch, "INP_a", `{}`)
		require.NoError(t, batch.Queue("updating a missing table", func(db *postgres.Batch) error {
			_, err := db.Exec(ctx, "UPDATE no_such_table SET n = 1")
			return err
		}))
		queueInput(t, &batch, "INP_c", `{}`)

		err := postgres.WithTx(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
			return batch.Send(ctx, tx)
		})
		require.Regexp(t, `^updating a missing table: `, err.Error())
		require.Empty(t, inputIDs(t, pool))
	})

	t.Run("NamesEveryUnansweredStatementWhenTheConnectionIsLost", func(t *testing.T) {
		t.Parallel()
		proxy, url := dbtest.NewProxy(t, dbtest.NewURL(t))
		pool := dbtest.Connect(t, url)
		var batch postgres.Batch
		queueInput(t, &batch, "INP_a", `{}`)
		queueInput(t, &batch, "INP_b", `{}`)

		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }() // returns the connection, so the pool can close
		proxy.Cut()
		err = batch.Send(ctx, tx)
		require.Error(t, err)
		require.Regexp(t, `^storing INP_a, storing INP_b: `, err.Error())
	})

	t.Run("RefusesQueriesThatReadRows", func(t *testing.T) {
		t.Parallel()
		var batch postgres.Batch
		err := batch.Queue("reading the schedule", func(db *postgres.Batch) error {
			_, err := queries.ScheduleGet(ctx, db, 1)
			return err
		})
		require.ErrorContains(t, err, "reading the schedule: ")
		err = batch.Queue("listing schedules", func(db *postgres.Batch) error {
			_, err := queries.ScheduleListActive(ctx, db)
			return err
		})
		require.ErrorContains(t, err, "listing schedules: ")
		require.Zero(t, batch.Len())
	})

	t.Run("RefusesAFunctionThatQueuesNothing", func(t *testing.T) {
		t.Parallel()
		var batch postgres.Batch
		err := batch.Queue("nothing", func(*postgres.Batch) error { return nil })
		require.EqualError(t, err, "nothing: 0 statements queued, want 1")
		err = batch.Queue("failing", func(*postgres.Batch) error { return errors.New("no") })
		require.EqualError(t, err, "failing: no")
		require.Zero(t, batch.Len())
	})
}
