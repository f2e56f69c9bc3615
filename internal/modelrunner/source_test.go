package modelrunner

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStaticSource(t *testing.T) {
	t.Parallel()

	_, err := NewStaticSource([]ModelInfo{{Host: "h"}}, nil)
	require.EqualError(t, err, "static model 0 has no ID")
	_, err = NewStaticSource([]ModelInfo{{ID: "a"}, {ID: "a"}}, nil)
	require.EqualError(t, err, "static model a listed twice")

	src, err := NewStaticSource([]ModelInfo{{ID: "b", Host: "127.0.0.1", Port: 2}, {ID: "a", Host: "127.0.0.1", Port: 1}}, testLogger())
	require.NoError(t, err)
	snapshots := make(chan []ModelInfo, 4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(ms []ModelInfo) { snapshots <- ms }) }()

	first := <-snapshots
	require.Equal(t, []ModelInfo{
		{DeploymentID: "a", Host: "127.0.0.1", ID: "a", Port: 1, State: StateRunning},
		{DeploymentID: "b", Host: "127.0.0.1", ID: "b", Port: 2, State: StateRunning},
	}, first)

	require.NoError(t, src.ReportFailure(t.Context(), FailureReport{Code: FailureMultipleFailed, ModelID: "b"}))
	second := <-snapshots
	require.Equal(t, StateStopped, second[1].State)
	require.Equal(t, StateRunning, second[0].State)

	cancel()
	require.NoError(t, <-done)
}

func TestLoadLocalModels(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		yaml    string
		want    []LocalModel
		wantErr string
	}{
		{
			name: "Defaults",
			yaml: "models:\n  - id: \"1\"\n    model_name: momentum\n    cruncher_id: c1\n    runtime: go\n  - id: 2\n    desired_state: stopped\n",
			want: []LocalModel{
				{CruncherID: "c1", DesiredState: StateRunning, ID: "1", Model: "momentum", ModelName: "momentum", Runtime: "go"},
				{DesiredState: StateStopped, ID: "2"},
			},
		},
		{name: "BadState", yaml: "models:\n  - {id: a, runtime: go, desired_state: PAUSED}\n", wantErr: `desired_state must be RUNNING or STOPPED, got "PAUSED"`},
		{name: "Duplicate", yaml: "models:\n  - {id: a, runtime: go}\n  - {id: a, runtime: go}\n", wantErr: "model a listed twice"},
		{name: "MissingID", yaml: "models:\n  - {runtime: go}\n", wantErr: "models[0]: id is required"},
		{name: "MissingRuntime", yaml: "models:\n  - {id: a}\n", wantErr: "model a: runtime is required"},
		{name: "NotYAML", yaml: "models: [", wantErr: "parsing local models file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "models.dev.yml")
			require.NoError(t, os.WriteFile(path, []byte(tt.yaml), 0o600))
			got, err := LoadLocalModels(path)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

const localModelsYAML = `models:
  - id: "1"
    model_name: mean-reversion
    cruncher_id: local-0001
    cruncher_name: local-dev
    desired_state: RUNNING
    runtime: go
    model: mean-reversion
  - id: "2"
    model_name: momentum
    cruncher_id: local-0002
    desired_state: RUNNING
    runtime: go
  - id: "3"
    model_name: flag
    cruncher_id: local-0003
    desired_state: RUNNING
    runtime: go
    model: constant
    args: ["--constant-value", "0.75"]
  - id: "4"
    model_name: contrarian
    cruncher_id: local-0004
    desired_state: STOPPED
    runtime: go
`

// helperRuntime runs this test binary as a model host (see TestMain).
func helperRuntime(t testing.TB) CommandFunc {
	t.Helper()
	goRuntime := GoRuntime(os.Args[0])
	return func(m LocalModel, port int) (*exec.Cmd, error) {
		cmd, err := goRuntime(m, port)
		if err != nil {
			return nil, err
		}
		cmd.Env = append(os.Environ(), helperEnv+"=1")
		return cmd, nil
	}
}

func portOpen(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func TestLocalSource(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	file := filepath.Join(dir, "models.dev.yml")
	require.NoError(t, os.WriteFile(file, []byte(localModelsYAML), 0o600))
	src, err := NewLocalSource(LocalOptions{
		File:         file,
		Logger:       testLogger(),
		Now:          func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC) },
		PollInterval: 20 * time.Millisecond,
		Runtimes:     map[string]CommandFunc{"go": helperRuntime(t)},
		StartTimeout: 60 * time.Second,
		StopTimeout:  5 * time.Second,
	})
	require.NoError(t, err)

	r := NewRunner(RunnerOptions{Client: testClientOptions(nil), Logger: testLogger()})
	defer r.Close()
	snapshots := make(chan []ModelInfo, 64)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, src, func(ms []ModelInfo) { snapshots <- ms }) }()

	running := func(m map[string]ModelInfo, ids ...string) bool {
		for _, id := range ids {
			if m[id].State != StateRunning {
				return false
			}
		}
		return true
	}
	got := nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return running(m, "1", "2", "3") })
	require.Equal(t, StateStopped, got["4"].State)
	one := got["1"]
	require.Equal(t, "1_20260102_030405_678", one.DeploymentID)
	require.Equal(t, "127.0.0.1", one.Host)
	require.Equal(t, "mean-reversion", one.Name)
	require.Equal(t, "local-0001", one.PlayerID)
	require.Equal(t, "local-dev", one.PlayerName)
	require.Equal(t, "local-0002", got["2"].PlayerName) // falls back to the id

	waitFor(t, "3 ready clients", func() bool { return len(readyIDs(r)) == 3 })
	results, err := r.Call(t.Context(), "predict", "BTCUSDT", 60, 15)
	require.NoError(t, err)
	require.Len(t, results, 3)
	for _, res := range results {
		require.Equal(t, StatusSuccess, res.Status, "%s: %v", res.Model.ID, res.Err)
	}
	require.Equal(t, map[string]any{"value": 0.75}, results[2].Value) // the args reached the host

	// A failure report stops model 2's process.
	addr2 := got["2"].Addr()
	require.NoError(t, src.ReportFailure(t.Context(), FailureReport{Code: FailureMultipleTimeout, ModelID: "2", DeploymentID: got["2"].DeploymentID}))
	got = nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return m["2"].State == StateStopped })
	require.True(t, running(got, "1", "3"))
	waitFor(t, "model 2's process to exit", func() bool { return !portOpen(addr2) })
	waitFor(t, "runner to drop model 2", func() bool { return len(r.Models()) == 2 })

	// Editing the file starts model 4; model 2 stays quarantined.
	edited := []byte(localModelsYAML[:len(localModelsYAML)-len("    desired_state: STOPPED\n    runtime: go\n")] + "    desired_state: RUNNING\n    runtime: go\n")
	require.NoError(t, os.WriteFile(file, edited, 0o600))
	got = nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return running(m, "1", "3", "4") })
	require.Equal(t, StateStopped, got["2"].State)

	addrs := []string{got["1"].Addr(), got["3"].Addr(), got["4"].Addr()}
	cancel()
	require.NoError(t, <-done)
	for _, addr := range addrs {
		require.False(t, portOpen(addr), "host at %s still up after Run returned", addr)
	}
}

// TestLocalSourceStartRetry checks that a host that exits before it serves (as when
// another socket took its port first) is started again on a new port.
func TestLocalSourceStartRetry(t *testing.T) {
	t.Parallel()

	file := filepath.Join(t.TempDir(), "models.dev.yml")
	require.NoError(t, os.WriteFile(file, []byte("models:\n  - {id: a, runtime: go, model: constant}\n"), 0o600))
	helper := helperRuntime(t)
	var mu sync.Mutex
	var ports []int
	runtime := func(m LocalModel, port int) (*exec.Cmd, error) {
		mu.Lock()
		defer mu.Unlock()
		ports = append(ports, port)
		if len(ports) < startAttempts {
			return exec.Command("false"), nil // exits at once, like a failed bind
		}
		return helper(m, port)
	}
	src, err := NewLocalSource(LocalOptions{File: file, PollInterval: -1, Runtimes: map[string]CommandFunc{"go": runtime}, Logger: testLogger()})
	require.NoError(t, err)
	snapshots := make(chan []ModelInfo, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(ms []ModelInfo) { snapshots <- ms }) }()
	got := nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return m["a"].State == StateRunning })
	mu.Lock()
	require.Len(t, ports, startAttempts)
	require.Equal(t, ports[startAttempts-1], got["a"].Port)
	mu.Unlock()
	cancel()
	require.NoError(t, <-done)
}

func TestLocalSourceErrors(t *testing.T) {
	t.Parallel()

	_, err := NewLocalSource(LocalOptions{Runtimes: map[string]CommandFunc{"go": GoRuntime("x")}})
	require.EqualError(t, err, "local source: File is required")
	_, err = NewLocalSource(LocalOptions{File: "x"})
	require.EqualError(t, err, "local source: no Runtimes")

	src, err := NewLocalSource(LocalOptions{File: filepath.Join(t.TempDir(), "missing.yml"), Runtimes: map[string]CommandFunc{"go": GoRuntime("x")}})
	require.NoError(t, err)
	require.ErrorContains(t, src.Run(t.Context(), func([]ModelInfo) {}), "reading local models file")
	require.EqualError(t, src.ReportFailure(t.Context(), FailureReport{ModelID: "1"}), "local source: not running")

	// An unknown runtime or a host that exits at once leaves the model
	// STOPPED without stopping the others.
	file := filepath.Join(t.TempDir(), "models.dev.yml")
	require.NoError(t, os.WriteFile(file, []byte("models:\n  - {id: a, runtime: python}\n  - {id: b, runtime: go, model: nope}\n"), 0o600))
	src, err = NewLocalSource(LocalOptions{File: file, PollInterval: -1, Runtimes: map[string]CommandFunc{"go": helperRuntime(t)}, Logger: testLogger()})
	require.NoError(t, err)
	snapshots := make(chan []ModelInfo, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(ms []ModelInfo) { snapshots <- ms }) }()
	got := nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool {
		return m["a"].State == StateStopped && m["b"].State == StateStopped
	})
	require.Len(t, got, 2)
	cancel()
	require.NoError(t, <-done)
}
