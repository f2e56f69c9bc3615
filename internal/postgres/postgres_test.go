package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

// TestNewPoolSettings: every connection of a pool has the session settings its options
// ask for, whichever connection a query gets.
func TestNewPoolSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	tests := []struct {
		name     string
		opts     postgres.PoolOptions
		wantSync string
		wantName string
		wantJIT  string
	}{
		{name: "Default", opts: postgres.PoolOptions{}, wantSync: "on", wantJIT: "off"},
		{name: "AsynchronousCommit", opts: postgres.PoolOptions{ApplicationName: "crunch-node river", AsynchronousCommit: true}, wantSync: "off", wantName: "crunch-node river", wantJIT: "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, err := postgres.NewPool(ctx, url, tt.opts)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			var sync, name, jit string
			require.NoError(t, pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit'), current_setting('application_name'), current_setting('jit')").Scan(&sync, &name, &jit))
			require.Equal(t, []string{tt.wantSync, tt.wantName, tt.wantJIT}, []string{sync, name, jit})
		})
	}
}
