package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbtest"
)

// The crash tests kill a node with SIGKILL, the way the OOM killer would: no shutdown code
// runs, and River's job rows stay `running`. Only the node's own process is killed, not
// its process group, so the model hosts it started are orphaned as they would be. The tests
// restart it and check that the work is done after all, exactly once. A short rescue
// window keeps them quick; the predict job's timeout must fit inside it, hence the short
// model timeouts.

// TestBackfillResumesAfterKill: a feed node killed in the middle of a backfill, restarted,
// finishes it from its cursor. Every page is written exactly once (the counters say so),
// feed_records holds each candle of the range once, the watermark reaches the range's
// end, and no River job is left running.
func TestBackfillResumesAfterKill(t *testing.T) {
	t.Parallel()
	const rescueAfter = 12 * time.Second
	url := dbtest.NewURL(t)
	pool := dbtest.Connect(t, url)
	port := freePort(t)
	env := []string{
		"DATABASE_URL=" + url,
		"FEED_BACKFILL_MINUTES=10",
		"FEED_GRANULARITY=1m",
		"FEED_POLL_SECONDS=1",
		"FEED_SOURCE=synthetic",
		fmt.Sprintf("JOB_RESCUE_AFTER_SECONDS=%d", int(rescueAfter.Seconds())),
		"MODEL_RUNNER_TIMEOUT_SECONDS=0.5",
		"REPORT_API_HOST=127.0.0.1",
		fmt.Sprintf("REPORT_API_PORT=%d", port),
	}
	first := startNode(t, env, "run", "--roles", "feed,report")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUntil(t, 30*time.Second, "the node serves /healthz", first, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// One-second candles over a day, 87 pages of 1000: a second or two of work, in a
	// scope (1s) that the live poll (1m) does not write, so every row is the backfill's.
	end := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	start := end.Add(-24 * time.Hour)
	want := int64(end.Sub(start)/time.Second) + 1
	body, err := json.Marshal(map[string]string{
		"end": end.Format(time.RFC3339), "granularity": "1s", "kind": "candle",
		"source": "synthetic", "start": start.Format(time.RFC3339), "subject": "BTCUSDT",
	})
	require.NoError(t, err)
	resp, err := http.Post(base+"/reports/backfill", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	var job struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&job))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	type progress struct {
		cursor  *time.Time
		pages   int32
		records int64
		status  string
	}
	read := func() progress {
		var p progress
		require.NoError(t, pool.QueryRow(t.Context(),
			`SELECT cursor_ts, pages_fetched, records_written, status FROM backfill_jobs WHERE id = $1`, job.ID,
		).Scan(&p.cursor, &p.pages, &p.records, &p.status))
		return p
	}
	// cursors is every cursor seen, in order, across the kill and the restart.
	var cursors []time.Time
	observe := func() progress {
		p := read()
		if p.cursor != nil {
			cursors = append(cursors, *p.cursor)
		}
		return p
	}

	// Kill once a few pages are written: most of the range is still ahead.
	waitUntilEvery(t, 30*time.Second, 5*time.Millisecond, "the backfill writes its first pages", first, func() bool {
		return observe().records >= 5000
	})
	first.kill9(t)
	atKill := observe()
	require.Equal(t, "running", atKill.status, "the backfill finished before the kill; make its range longer")
	require.Less(t, atKill.records, want, "the backfill finished before the kill; make its range longer")
	var riverJobID int64
	var riverState string
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT id, state FROM river_job WHERE kind = 'backfill' AND args->>'job_id' = $1`, job.ID,
	).Scan(&riverJobID, &riverState))
	require.Equal(t, "running", riverState, "the killed process leaves its job running")

	restartedAt := waitPastRescueWindow(t, pool, riverJobID, rescueAfter)
	second := startNode(t, env, "run", "--roles", "feed,report")
	waitUntil(t, 45*time.Second, "the backfill completes after the restart", second, func() bool {
		return observe().status == "completed"
	})
	done := read()
	t.Logf("killed at %d of %d records (%d pages); completed after the restart", atKill.records, want, atKill.pages)

	// Resumed, not restarted: each page was written once, and the cursor never went back.
	require.Equal(t, want, done.records, "records written over both runs")
	require.Equal(t, int32((want+999)/1000), done.pages, "pages fetched over both runs")
	require.True(t, slices.IsSortedFunc(cursors, func(a, b time.Time) int { return a.Compare(b) }), "the cursor never moves back: %v", cursors)
	require.Equal(t, end.Add(time.Second), done.cursor.UTC(), "the cursor is one candle past the range")

	var rows, distinct int64
	require.NoError(t, pool.QueryRow(t.Context(), `
		SELECT count(*), count(DISTINCT ts_event) FROM feed_records
		WHERE source = 'synthetic' AND subject = 'BTCUSDT' AND kind = 'candle' AND granularity = '1s'`,
	).Scan(&rows, &distinct))
	require.Equal(t, want, rows, "one row per candle of the range")
	require.Equal(t, want, distinct)

	var backfilled, polled time.Time
	require.NoError(t, pool.QueryRow(t.Context(), `
		SELECT last_event_ts FROM feed_ingestion_state
		WHERE source = 'synthetic' AND subject = 'BTCUSDT' AND kind = 'candle' AND granularity = '1s'`,
	).Scan(&backfilled))
	require.Equal(t, end, backfilled.UTC(), "the backfilled scope's watermark is the range's last candle")
	require.NoError(t, pool.QueryRow(t.Context(), `
		SELECT last_event_ts FROM feed_ingestion_state
		WHERE source = 'synthetic' AND subject = 'BTCUSDT' AND kind = 'candle' AND granularity = '1m'`,
	).Scan(&polled))
	require.WithinDuration(t, time.Now(), polled, 3*time.Minute, "the live poll keeps its watermark current")

	requireRescued(t, pool, riverJobID)
	requireNoneLeftRunning(t, pool, restartedAt)
}

// TestPredictRetriedAfterKill: a predict node killed while a predict job waits for its
// models, restarted, runs the job again and stores exactly one prediction per model for
// that slot. The killed node's model hosts die with it rather than linger.
func TestPredictRetriedAfterKill(t *testing.T) {
	t.Parallel()
	const rescueAfter = 15 * time.Second
	url := dbtest.NewURL(t)
	pool := dbtest.Connect(t, url)
	dir := t.TempDir()
	// Each call takes a second, so a predict job (feed_update, then predict) is in flight
	// for two: long enough to be caught running, well inside the 2 s call deadline.
	models := filepath.Join(dir, "models.yml")
	require.NoError(t, os.WriteFile(models, []byte(`models:
  - {id: "1", model_name: constant, cruncher_id: c1, runtime: go, args: ["--delay", "1s"]}
  - {id: "2", model_name: momentum, cruncher_id: c2, runtime: go, args: ["--delay", "1s"]}
`), 0o644))
	// The competition crunch-node dev runs: a prediction every 5 s on one-second candles.
	crunchConfig, err := filepath.Abs("../../internal/cli/devfiles/crunch_config.yaml")
	require.NoError(t, err)
	env := []string{
		"CRUNCH_CONFIG=" + crunchConfig,
		"DATABASE_URL=" + url,
		"FEED_BACKFILL_MINUTES=3",
		"FEED_GRANULARITY=1s",
		"FEED_POLL_SECONDS=1",
		"FEED_SOURCE=synthetic",
		fmt.Sprintf("JOB_RESCUE_AFTER_SECONDS=%d", int(rescueAfter.Seconds())),
		"MODEL_RUNNER_TIMEOUT_SECONDS=2",
		"MODEL_SOURCE=local",
		"MODELS_FILE=" + models,
	}
	first := startNode(t, env, "run", "--roles", "feed,predict")
	waitUntil(t, 30*time.Second, "both models serve", first, func() bool {
		var running int
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM models WHERE state = 'RUNNING'`).Scan(&running))
		return running == 2
	})
	hosts := first.modelHosts(t)
	require.Len(t, hosts, 2)

	// A predict job that started after the models were ready, caught while it runs.
	var readyAt time.Time
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT now()`).Scan(&readyAt))
	var jobID, configID int64
	var slot time.Time
	waitUntilEvery(t, 30*time.Second, 5*time.Millisecond, "a predict job runs", first, func() bool {
		err := pool.QueryRow(t.Context(), `
			SELECT id, (args->>'config_id')::bigint, (args->>'slot_at')::timestamptz FROM river_job
			WHERE kind = 'predict' AND state = 'running' AND attempted_at > $1
			ORDER BY id LIMIT 1`, readyAt,
		).Scan(&jobID, &configID, &slot)
		return err == nil
	})
	first.kill9(t)
	var state string
	var stored int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT state FROM river_job WHERE id = $1`, jobID).Scan(&state))
	require.Equal(t, "running", state, "the job was in flight when the node died")
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT count(*) FROM predictions WHERE prediction_config_id = $1 AND slot_at = $2`, configID, slot,
	).Scan(&stored))
	require.Zero(t, stored, "the killed attempt committed nothing")

	if runtime.GOOS == "linux" {
		waitUntil(t, 10*time.Second, "the killed node's model hosts exit", nil, func() bool {
			return !slices.ContainsFunc(hosts, processAlive)
		})
	}

	restartedAt := waitPastRescueWindow(t, pool, jobID, rescueAfter)
	second := startNode(t, env, "run", "--roles", "feed,predict")
	waitUntil(t, 45*time.Second, "the predict job is retried and completes", second, func() bool {
		require.NoError(t, pool.QueryRow(t.Context(), `SELECT state FROM river_job WHERE id = $1`, jobID).Scan(&state))
		return state == "completed"
	})
	requireRescued(t, pool, jobID)

	var rows, distinctModels int
	require.NoError(t, pool.QueryRow(t.Context(), `
		SELECT count(*), count(DISTINCT model_id) FROM predictions
		WHERE prediction_config_id = $1 AND slot_at = $2`, configID, slot,
	).Scan(&rows, &distinctModels))
	require.Equal(t, 2, rows, "one prediction per model for the retried slot; node output:\n%s", second.output.String())
	require.Equal(t, 2, distinctModels)
	var duplicates int
	require.NoError(t, pool.QueryRow(t.Context(), `
		SELECT count(*) FROM (
			SELECT 1 FROM predictions GROUP BY model_id, prediction_config_id, slot_at HAVING count(*) > 1
		) d`,
	).Scan(&duplicates))
	require.Zero(t, duplicates, "no (model, config, slot) stored twice")
	requireNoneLeftRunning(t, pool, restartedAt)
}

// node is a crunch-node process started by a test, with its combined output.
type node struct {
	cmd    *exec.Cmd
	exited <-chan struct{}
	output *syncBuffer
}

// startNode starts the binary; the test's end stops it with SIGTERM (and SIGKILL if it
// does not stop in time).
func startNode(t *testing.T, env []string, args ...string) *node {
	t.Helper()
	cmd := command(t, env, args...)
	n := &node{cmd: cmd, output: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = n.output, n.output
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.exited = exited
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return n
}

// kill9 kills the node outright and waits until it is gone.
func (n *node) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, n.cmd.Process.Signal(syscall.SIGKILL))
	<-n.exited
	require.Contains(t, n.cmd.ProcessState.String(), "killed")
}

var modelHostPID = regexp.MustCompile(`msg="Local source: started model host".* pid=(\d+)`)

// modelHosts are the process ids of the model hosts the node said it started.
func (n *node) modelHosts(t *testing.T) []int {
	t.Helper()
	var pids []int
	for _, m := range modelHostPID.FindAllStringSubmatch(n.output.String(), -1) {
		pid, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

// processAlive says whether pid runs: a zombie (dead, not yet reaped by whoever
// inherited it) does not.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// waitPastRescueWindow waits until the job the killed node left running is older than
// the rescue window (by the database's clock, which stamped it), and returns that time.
// River's rescuer runs on the leader as soon as it is elected and then every 30 s;
// restarting after the window makes the first run find the job. Restarting earlier works
// the same, only up to one rescuer interval later, which would double the test's time.
func waitPastRescueWindow(t *testing.T, pool *pgxpool.Pool, jobID int64, rescueAfter time.Duration) time.Time {
	t.Helper()
	var now time.Time
	waitUntil(t, rescueAfter+10*time.Second, "the killed job is past the rescue window", nil, func() bool {
		var past bool
		require.NoError(t, pool.QueryRow(t.Context(),
			`SELECT now(), attempted_at < now() - make_interval(secs => $2) FROM river_job WHERE id = $1`,
			jobID, rescueAfter.Seconds(),
		).Scan(&now, &past))
		return past
	})
	return now
}

// requireRescued checks that River's rescuer, not luck, brought the job back.
func requireRescued(t *testing.T, pool *pgxpool.Pool, jobID int64) {
	t.Helper()
	var attempt int
	var errs []byte
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT attempt, coalesce(array_to_json(errors), '[]')::text FROM river_job WHERE id = $1`, jobID,
	).Scan(&attempt, &errs))
	require.GreaterOrEqual(t, attempt, 2, "the job ran again")
	require.Contains(t, string(errs), "Stuck job rescued", "River's rescuer retried it")
}

// requireNoneLeftRunning checks that no job of the killed node is still running.
func requireNoneLeftRunning(t *testing.T, pool *pgxpool.Pool, before time.Time) {
	t.Helper()
	var kinds []string
	require.NoError(t, pool.QueryRow(t.Context(),
		`SELECT coalesce(array_agg(kind), '{}') FROM river_job WHERE state = 'running' AND attempted_at < $1`, before,
	).Scan(&kinds))
	require.Empty(t, kinds, "jobs of the killed node still running")
}

// waitUntil polls cond every 100 ms until it holds; past the timeout the test fails with
// the node's output (when there is a node).
func waitUntil(t *testing.T, timeout time.Duration, what string, n *node, cond func() bool) {
	t.Helper()
	waitUntilEvery(t, timeout, 100*time.Millisecond, what, n, cond)
}

func waitUntilEvery(t *testing.T, timeout, every time.Duration, what string, n *node, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			output := ""
			if n != nil {
				output = n.output.String()
			}
			t.Fatalf("%s: not within %s; node output:\n%s", what, timeout, output)
		}
		<-ticker.C
	}
}
