package dbtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestProxy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	setup := func(t *testing.T) (*Proxy, string) {
		t.Helper()
		return NewProxy(t, NewURL(t))
	}
	connect := func(t *testing.T, url string) *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		return conn
	}
	one := func(conn *pgx.Conn) error {
		var n int
		return conn.QueryRow(ctx, "SELECT 1").Scan(&n)
	}

	t.Run("CutClosesAndRefusesUntilRestored", func(t *testing.T) {
		t.Parallel()
		proxy, url := setup(t)
		conn := connect(t, url)
		require.NoError(t, one(conn))

		proxy.Cut()
		require.Error(t, one(conn), "an open connection is cut")
		_, err := pgx.Connect(ctx, url)
		require.Error(t, err, "a new connection is refused")
		require.Positive(t, proxy.Refused())

		proxy.Restore()
		require.NoError(t, one(connect(t, url)))
	})

	t.Run("CutOnReplySwallowsTheReply", func(t *testing.T) {
		t.Parallel()
		proxy, url := setup(t)
		conn := connect(t, url)
		_, err := conn.Exec(ctx, "CREATE TABLE proxied (n int)")
		require.NoError(t, err)
		fired := proxy.CutOnReply([]byte("COMMIT\x00"))

		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "INSERT INTO proxied VALUES (1)")
		require.NoError(t, err)
		require.Error(t, tx.Commit(ctx), "the client never hears that its COMMIT succeeded")
		select {
		case <-fired:
		case <-time.After(10 * time.Second):
			t.Fatal("the COMMIT reply was not swallowed")
		}

		proxy.Restore()
		var n int
		require.NoError(t, connect(t, url).QueryRow(ctx, "SELECT count(*) FROM proxied").Scan(&n))
		require.Equal(t, 1, n, "the server did commit")
	})
}
