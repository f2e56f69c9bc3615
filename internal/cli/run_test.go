package cli

import (
	"context"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/jobs"
)

// startNode runs a node in-process until the returned stop function is called.
func startNode(t *testing.T, databaseURL, clientID string) (stop func() error) {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"DATABASE_URL": databaseURL, "SHUTDOWN_GRACE_SECONDS": "2"}[k]
	}, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runNode(ctx, nodeOptions{
			cfg: cfg, logger: dbtest.Logger(t), roles: jobs.AllRoles, listener: listener,
			ready: ready, riverClientID: clientID,
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("node %s did not start: %v", clientID, err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("node %s did not start within 20s", clientID)
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func currentLeader(ctx context.Context, pool *pgxpool.Pool) string {
	var leader string
	if err := pool.QueryRow(ctx, "SELECT leader_id FROM river_leader").Scan(&leader); err != nil {
		return ""
	}
	return leader
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a wait for an outcome
	}
}

func TestTwoNodesElectOneLeader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	stopA := startNode(t, url, "node-a")
	stopB := startNode(t, url, "node-b")

	waitFor(t, 30*time.Second, "a leader", func() bool { return currentLeader(ctx, pool) != "" })
	var leaders int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM river_leader").Scan(&leaders))
	require.Equal(t, 1, leaders)

	first := currentLeader(ctx, pool)
	require.Contains(t, []string{"node-a", "node-b"}, first)

	// Stopping the leader resigns; the other node takes over.
	stops := map[string]func() error{"node-a": stopA, "node-b": stopB}
	require.NoError(t, stops[first]())
	other := map[string]string{"node-a": "node-b", "node-b": "node-a"}[first]
	waitFor(t, 30*time.Second, "the other node to lead", func() bool { return currentLeader(ctx, pool) == other })
}

func TestRunStopsOnBrokenRanker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"DATABASE_URL": dbtest.NewURL(t), "LEADERBOARD_RANKER": "node/missing.star:rank"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := Run(ctx, []string{"run", "--roles", "score", "--workspace", dir}, func(k string) string { return env[k] }, &discard{})
	require.ErrorContains(t, err, "LEADERBOARD_RANKER: loading "+dir+"/node/missing.star:rank: open "+dir+"/node/missing.star: no such file or directory")
}

func TestRunRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), []string{"run"}, func(k string) string {
		if k == "DATABASE_URL" {
			return "postgres://postgres@127.0.0.1:1/none?connect_timeout=1"
		}
		return ""
	}, &discard{})
	require.Error(t, err)
	require.Contains(t, err.Error(), "Postgres is not reachable")
}

func TestRunStopsOnBrokenInferenceCallable(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{
			name:    "BuilderMissingFile",
			env:     map[string]string{"INFERENCE_INPUT_BUILDER": "node/missing.star:build"},
			wantErr: "INFERENCE_INPUT_BUILDER: loading {dir}/node/missing.star:build: open {dir}/node/missing.star: no such file or directory",
		},
		{
			name:    "BuilderUnknownName",
			env:     map[string]string{"INFERENCE_INPUT_BUILDER": "ohlc"},
			wantErr: `INFERENCE_INPUT_BUILDER: unknown input builder "ohlc"`,
		},
		{
			name:    "ValidatorSyntaxError",
			env:     map[string]string{"INFERENCE_OUTPUT_VALIDATOR": "node/broken.star:check"},
			wantErr: "INFERENCE_OUTPUT_VALIDATOR: loading {dir}/node/broken.star:check: {dir}/node/broken.star:2:1: got end of file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "node"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "node", "broken.star"), []byte("def check(output):\n"), 0o600))
			env := map[string]string{"DATABASE_URL": url, "MODEL_SOURCE": "static"}
			maps.Copy(env, tt.env)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := Run(ctx, []string{"run", "--roles", "predict", "--workspace", dir}, func(k string) string { return env[k] }, &discard{})
			require.ErrorContains(t, err, strings.ReplaceAll(tt.wantErr, "{dir}", dir))
		})
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, &discard{})
	require.True(t, errors.Is(err, ErrUsage))
	err = Run(context.Background(), []string{"run", "--roles", "feed,bogus"}, func(string) string { return "" }, &discard{})
	require.True(t, errors.Is(err, ErrUsage))
	require.Contains(t, err.Error(), "bogus")
}

// TestCommandHelp: --help prints a command's flags and does not run it (the
// dev command would otherwise start a node).
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"dev", "--help"}, {"run", "-h"}, {"migrate", "--help"}} {
		var out strings.Builder
		err := Run(context.Background(), args, func(string) string { return "" }, &out)
		require.NoError(t, err, "%v", args)
		require.Contains(t, out.String(), "Usage of "+args[0], "%v", args)
	}
}

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }
