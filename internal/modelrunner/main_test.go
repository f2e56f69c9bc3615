package modelrunner

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/test/bufconn"

	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
)

// helperEnv switches the test binary into a model host, so the local source
// test can start real subprocesses without building anything.
const helperEnv = "MODELRUNNER_TEST_MODEL_HOST"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := modelhost.Run(ctx, os.Args[1:], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func exampleFactory(t testing.TB, name string) modelhost.Factory {
	t.Helper()
	f, err := modelhost.ExampleFactory(name, modelhost.ExampleOptions{ConstantValue: 0.5})
	require.NoError(t, err)
	return f
}

// startTCPHost serves a model host on a loopback port and returns where it
// is, as a source would describe it.
func startTCPHost(t testing.TB, id, example string, faults modelhost.Faults) (ModelInfo, *modelhost.Host) {
	t.Helper()
	info, h := startTCPHostConfig(t, id, modelhost.Config{Factory: exampleFactory(t, example), Faults: faults})
	info.Name = example
	return info, h
}

// startTCPHostConfig is startTCPHost for any host configuration.
func startTCPHostConfig(t testing.TB, id string, cfg modelhost.Config) (ModelInfo, *modelhost.Host) {
	t.Helper()
	h, err := modelhost.New(cfg)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = h.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h.Stop(ctx)
	})
	return ModelInfo{
		DeploymentID: id + "_20260101_000000_000",
		Host:         "127.0.0.1",
		ID:           id,
		Name:         id,
		PlayerID:     "player-" + id,
		PlayerName:   "Player " + id,
		Port:         lis.Addr().(*net.TCPAddr).Port,
		State:        StateRunning,
	}, h
}

// startBufHost serves a model host in memory and returns the dialer that
// reaches it.
func startBufHost(t testing.TB, example string, faults modelhost.Faults) (func(context.Context, string) (net.Conn, error), *modelhost.Host) {
	t.Helper()
	h, err := modelhost.New(modelhost.Config{Factory: exampleFactory(t, example), Faults: faults})
	require.NoError(t, err)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = h.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h.Stop(ctx)
	})
	return func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }, h
}

// reports collects failure reports.
type reports struct {
	mu   sync.Mutex
	list []FailureReport
}

func (r *reports) report(_ context.Context, fr FailureReport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, fr)
	return nil
}

func (r *reports) get() []FailureReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]FailureReport(nil), r.list...)
}

// testClientOptions are fast settings for tests: short deadlines and
// backoffs, small thresholds.
func testClientOptions(rep *reports) ClientOptions {
	return ClientOptions{
		CallTimeout:            300 * time.Millisecond,
		ConnectTimeout:         2 * time.Second,
		HealthTimeout:          time.Second,
		Logger:                 testLogger(),
		MaxConsecutiveFailures: 3,
		MaxConsecutiveTimeouts: 5,
		Report:                 rep.report,
		SetupAttempts:          2,
		SetupBackoff:           10 * time.Millisecond,
		SetupTimeout:           2 * time.Second,
	}
}

func candles(symbol string, closes ...float64) map[string]any {
	rows := make([]any, len(closes))
	for i, c := range closes {
		rows[i] = map[string]any{"ts": float64(1_700_000_000 + 60*i), "open": c, "high": c, "low": c, "close": c, "volume": 1.0}
	}
	return map[string]any{"symbol": symbol, "asof_ts": float64(1_700_000_000 + 60*len(closes)), "candles_1m": rows}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 15*time.Second, 5*time.Millisecond, "waiting for %s", what)
}

func testLogger() *slog.Logger {
	if os.Getenv("MODELRUNNER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
