package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/telemetry"
)

// testBundle is a River client with every worker, started on a fresh database, and the
// job events it emits.
type testBundle struct {
	client *river.Client[pgx.Tx]
	deps   *Deps
	events <-chan *river.Event
	pool   *pgxpool.Pool
}

// setupRiver starts a client working every queue. Periodic jobs are left out so a test
// decides what runs.
func setupRiver(t testing.TB, cfg *config.Config, mutate func(*Deps)) *testBundle {
	t.Helper()
	return setupRiverPolling(t, cfg, mutate, 50*time.Millisecond)
}

// setupRiverPolling is setupRiver with the given fetch poll interval; a long one makes
// jobs depend on insert notifications alone to be picked up.
func setupRiverPolling(t testing.TB, cfg *config.Config, mutate func(*Deps), poll time.Duration) *testBundle {
	t.Helper()
	pool := dbtest.NewPool(t)
	return setupRiverPools(t, pool, pool, cfg, mutate, poll)
}

// setupRiverPools is setupRiver on pools the test made: the application's (Deps.Pool) and
// River's own, as a node has them.
func setupRiverPools(t testing.TB, pool, riverPool *pgxpool.Pool, cfg *config.Config, mutate func(*Deps), poll time.Duration) *testBundle {
	t.Helper()
	ctx := context.Background()
	if cfg == nil {
		var err error
		cfg, err = config.Load(func(string) string { return "" }, config.Options{Dir: t.TempDir()})
		require.NoError(t, err)
	}
	deps := &Deps{Config: cfg, Logger: dbtest.Logger(t), Metrics: telemetry.New(), Pool: pool}
	if mutate != nil {
		mutate(deps)
	}
	require.NoError(t, SyncConfig(ctx, pool, cfg, deps.Logger))
	riverConfig := ClientConfig(deps, AllRoles)
	riverConfig.PeriodicJobs = nil
	riverConfig.FetchPollInterval = poll
	client, err := river.NewClient(riverpgxv5.New(riverPool), riverConfig)
	require.NoError(t, err)
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	t.Cleanup(cancel)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = client.Stop(stopCtx)
	})
	return &testBundle{client: client, deps: deps, events: events, pool: pool}
}

// runJob inserts a job and waits until it has finished, returning the event.
func (b *testBundle) runJob(t testing.TB, args river.JobArgs) *river.Event {
	t.Helper()
	inserted, err := b.client.Insert(context.Background(), args, nil)
	require.NoError(t, err)
	return b.waitJob(t, inserted.Job.ID)
}

func (b *testBundle) waitJob(t testing.TB, id int64) *river.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case event := <-b.events:
			if event.Job.ID == id {
				return event
			}
		case <-timeout:
			t.Fatalf("job %d did not finish within 30s", id)
		}
	}
}

// waitKind waits for the next finished job of a kind (one enqueued by another job).
func (b *testBundle) waitKind(t testing.TB, kind string) *river.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case event := <-b.events:
			if event.Job.Kind == kind {
				return event
			}
		case <-timeout:
			t.Fatalf("no %s job finished within 30s", kind)
		}
	}
}
