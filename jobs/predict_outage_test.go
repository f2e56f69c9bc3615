package jobs

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
)

// appTracer watches the application pool: it lets a test act just before a statement is
// sent, and reports every failed statement or connection, which is how a test knows the
// worker has run into an outage.
type appTracer struct {
	beforeQuery atomic.Pointer[func(sql string)]
	failures    chan error
}

func (a *appTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if f := a.beforeQuery.Load(); f != nil {
		(*f)(data.SQL)
	}
	return ctx
}

func (a *appTracer) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	a.report(data.Err)
}

// TraceBatchStart lets the test act before a batch (the tick's input, or its predictions
// and score queue row) is sent, as before a statement.
func (a *appTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if f := a.beforeQuery.Load(); f != nil {
		for _, q := range data.Batch.QueuedQueries {
			(*f)(q.SQL)
		}
	}
	return ctx
}

func (a *appTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	a.report(data.Err)
}

func (a *appTracer) TraceBatchEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	a.report(data.Err)
}

func (a *appTracer) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return ctx
}

func (a *appTracer) TraceAcquireEnd(_ context.Context, _ *pgxpool.Pool, data pgxpool.TraceAcquireEndData) {
	a.report(data.Err)
}

func (a *appTracer) report(err error) {
	if err != nil {
		select {
		case a.failures <- err:
		default: // the test only needs to know that one happened
		}
	}
}

// logWatch passes log records on and closes seen when one's message contains want: a
// test's only window into River's internal retries.
type logWatch struct {
	slog.Handler
	once *sync.Once
	seen chan struct{}
	want string
}

func newLogWatch(next slog.Handler, want string) *logWatch {
	return &logWatch{Handler: next, once: &sync.Once{}, seen: make(chan struct{}), want: want}
}

func (w *logWatch) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return w.Handler.Handle(ctx, r)
}

func (w *logWatch) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *w
	c.Handler = w.Handler.WithAttrs(attrs)
	return &c
}

func (w *logWatch) WithGroup(name string) slog.Handler {
	c := *w
	c.Handler = w.Handler.WithGroup(name)
	return &c
}

// duringModelCallError is what a tick cut off while a model answers records: the input
// is stored and the model list read while the models compute, so the first statement to
// meet the outage is one of those or the transaction that stores the tick.
const duringModelCallError = `listing models|storing|beginning transaction`

// TestPredictSurvivesDatabaseOutage cuts the database away from a node in the middle of a
// tick (both its pools, as a partition or a restart would) and brings it back: the slot's
// predictions must end up stored exactly once per model and the job completed.
func TestPredictSurvivesDatabaseOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	type outageBundle struct {
		*testBundle
		appProxy *dbtest.Proxy
		args     PredictArgs
		block    atomic.Bool // the slow model holds its next answer until release
		// completerFailed is closed when River logged the failure the test waits for
		// before restoring the database.
		completerFailed <-chan struct{}
		direct          *pgxpool.Pool
		release         chan struct{}
		riverProxy      *dbtest.Proxy
		started         chan struct{}
		tracer          *appTracer
	}

	setup := func(t *testing.T, restoreAfter string) *outageBundle {
		t.Helper()
		url := dbtest.NewURL(t)
		o := &outageBundle{
			release: make(chan struct{}),
			started: make(chan struct{}, 1),
			tracer:  &appTracer{failures: make(chan error, 16)},
		}
		var appURL, riverURL string
		o.appProxy, appURL = dbtest.NewProxy(t, url)
		o.riverProxy, riverURL = dbtest.NewProxy(t, url)
		newPool := func(u string, tracer pgx.QueryTracer) *pgxpool.Pool {
			cfg, err := pgxpool.ParseConfig(u)
			require.NoError(t, err)
			cfg.ConnConfig.Tracer = tracer
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			return pool
		}
		o.direct = newPool(url, nil)

		slow := startScriptedHost(t, "m-slow", func(ctx context.Context, _ map[string]any) (any, error) {
			if o.block.CompareAndSwap(true, false) {
				o.started <- struct{}{}
				select {
				case <-o.release:
				case <-ctx.Done():
				}
			}
			return map[string]any{"value": 0.25}, nil
		})
		models := []modelrunner.ModelInfo{
			slow,
			startHost(t, "m-constant", "constant", modelhost.Faults{}),
			startHost(t, "m-momentum", "momentum", modelhost.Faults{}),
		}
		cfg := feedConfig(t, map[string]string{"FEED_SOURCE": "synthetic", "FEED_GRANULARITY": "1s"})
		o.testBundle = setupRiverPools(t, newPool(appURL, o.tracer), newPool(riverURL, nil), cfg, func(d *Deps) {
			d.Predicting = newPredicting(t, models)
			watch := newLogWatch(d.Logger.Handler(), restoreAfter)
			o.completerFailed = watch.seen
			d.Logger = slog.New(watch)
		}, 50*time.Millisecond)
		require.NoError(t, MirrorModels(ctx, o.direct, models))
		o.args = seedTick(ctx, t, o.direct)
		return o
	}

	// cutBoth takes the database away from both pools.
	cutBoth := func(o *outageBundle) {
		o.appProxy.Cut()
		o.riverProxy.Cut()
	}
	// armDuringModelCall cuts while the slow model is still answering, then lets it
	// answer; the worker's next statement meets the outage.
	armDuringModelCall := func(t *testing.T, o *outageBundle) <-chan struct{} {
		t.Helper()
		o.block.Store(true)
		done := make(chan struct{})
		go func() {
			select {
			case <-o.started:
			case <-time.After(15 * time.Second):
				return // the test times out waiting for done
			}
			cutBoth(o)
			close(o.release)
			close(done)
		}()
		return done
	}
	// cutBefore cuts just before the first statement whose SQL contains sql is sent.
	cutBefore := func(sql string) func(t *testing.T, o *outageBundle) <-chan struct{} {
		return func(t *testing.T, o *outageBundle) <-chan struct{} {
			t.Helper()
			done := make(chan struct{})
			var once sync.Once
			hook := func(query string) {
				if strings.Contains(query, sql) {
					once.Do(func() {
						cutBoth(o)
						close(done)
					})
				}
			}
			o.tracer.beforeQuery.Store(&hook)
			return done
		}
	}
	const completerRetrying = "Completer error (will retry after sleep)"
	wait := func(t *testing.T, what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(15 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
	}

	tests := []struct {
		name string
		// arm prepares the cut before the job is inserted and returns a channel closed
		// once the database is gone.
		arm         func(t *testing.T, o *outageBundle) <-chan struct{}
		wantAttempt int
		// restoreAfter is the River log message after which the database comes back.
		restoreAfter string
		// wantError is the one error the job records, matched as a regular expression;
		// empty means it records none.
		wantError string
	}{
		{
			// The worker's COMMIT reaches the server but its acknowledgement is lost: the
			// predictions and the job's completion are stored, the worker sees an error,
			// and nothing must run twice.
			name: "CommitReplyLost",
			arm: func(t *testing.T, o *outageBundle) <-chan struct{} {
				t.Helper()
				fired := o.appProxy.CutOnReply([]byte("COMMIT\x00"))
				done := make(chan struct{})
				go func() {
					<-fired
					o.riverProxy.Cut()
					close(done)
				}()
				return done
			},
			restoreAfter: completerRetrying,
			wantAttempt:  1,
		},
		{
			name:         "DuringModelCall",
			arm:          armDuringModelCall,
			restoreAfter: completerRetrying,
			wantAttempt:  2,
			wantError:    duringModelCallError,
		},
		{
			// The input has its own transaction, sent while the models compute.
			name:         "DuringInputInsert",
			arm:          cutBefore("INSERT INTO inputs"),
			restoreAfter: completerRetrying,
			wantAttempt:  2,
			wantError:    "storing input",
		},
		{
			name:         "DuringPredictionInsert",
			arm:          cutBefore("INSERT INTO predictions"),
			restoreAfter: completerRetrying,
			wantAttempt:  2,
			wantError:    "storing 3 predictions",
		},
		{
			// Longer than River's completer retries (about 7 s): it gives up on this
			// round and keeps the outcome for the next one rather than dropping it.
			name:         "OutlastsCompleterRetries",
			arm:          armDuringModelCall,
			restoreAfter: "Too many errors; giving up",
			wantAttempt:  2,
			wantError:    duringModelCallError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := setup(t, tt.restoreAfter)
			cut := tt.arm(t, o)

			inserted, err := o.client.Insert(ctx, o.args, nil)
			require.NoError(t, err)
			wait(t, "the cut", cut)
			select {
			case <-o.tracer.failures:
			case <-time.After(15 * time.Second):
				t.Fatal("the worker never ran into the outage")
			}
			// River's own bookkeeping runs into it too before the database returns: it
			// cannot record the attempt's outcome and must keep it until it can.
			wait(t, "River to log "+tt.restoreAfter, o.completerFailed)
			// Its first failure may be the cut of a connection it held; its
			// retries then dial, and are refused.
			refusedBy := time.Now().Add(15 * time.Second)
			for o.riverProxy.Refused() == 0 {
				require.True(t, time.Now().Before(refusedBy), "River's pool was never refused during the outage")
				time.Sleep(10 * time.Millisecond)
			}
			o.appProxy.Restore()
			o.riverProxy.Restore()

			var (
				state    string
				attempt  int
				errCount int
				lastErr  string
			)
			deadline := time.Now().Add(20 * time.Second)
			for {
				require.NoError(t, o.direct.QueryRow(ctx, `
					SELECT state, attempt, coalesce(array_length(errors, 1), 0), coalesce(errors[array_length(errors, 1)]->>'error', '')
					FROM river_job WHERE id = $1`, inserted.Job.ID).Scan(&state, &attempt, &errCount, &lastErr))
				if state == "completed" {
					break
				}
				require.NotContains(t, []string{"cancelled", "discarded"}, state, "the tick was given up (last error %q)", lastErr)
				require.True(t, time.Now().Before(deadline), "job still %s after attempt %d (last error %q)", state, attempt, lastErr)
				time.Sleep(20 * time.Millisecond) // polling interval
			}
			require.Equal(t, tt.wantAttempt, attempt)
			if tt.wantError == "" {
				require.Zero(t, errCount, lastErr)
			} else {
				require.Equal(t, 1, errCount)
				require.Regexp(t, tt.wantError, lastErr)
			}

			rows, err := o.direct.Query(ctx, "SELECT model_id, status FROM predictions WHERE slot_at = $1 ORDER BY model_id", o.args.SlotAt)
			require.NoError(t, err)
			got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Model, Status string }])
			require.NoError(t, err)
			require.Equal(t, []struct{ Model, Status string }{
				{"m-constant", "PENDING"}, {"m-momentum", "PENDING"}, {"m-slow", "PENDING"},
			}, got, "one prediction per model, none lost, none twice")
			var inputs int
			require.NoError(t, o.direct.QueryRow(ctx, "SELECT count(*) FROM inputs").Scan(&inputs))
			require.Equal(t, 1, inputs)
		})
	}
}
