package main_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbtest"
)

// binary is the crunch-node binary built once for these end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crunch-node-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "crunch-node")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building crunch-node:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func command(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = t.TempDir() // no node/ folder: embedded defaults
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A database that does not exist yet: migrate must create it.
	name := fmt.Sprintf("crunch_e2e_%d", time.Now().UnixNano())
	server, err := pgx.Connect(ctx, dbtest.ServerURL())
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = server.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = server.Close(context.Background())
	})
	u := strings.Replace(dbtest.ServerURL(), "/postgres?", "/"+name+"?", 1)
	env := []string{"DATABASE_URL=" + u}

	out, err := command(t, env, "migrate").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "Applied")

	out, err = command(t, env, "migrate").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "Database is up to date.")
}

func TestRunStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cmd := command(t, []string{
		"DATABASE_URL=" + dbtest.NewURL(t),
		fmt.Sprintf("REPORT_API_PORT=%d", port),
		"REPORT_API_HOST=127.0.0.1",
	}, "run")
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	healthURL := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(healthURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "node never became healthy:\n%s", output.String())
		time.Sleep(100 * time.Millisecond) // polling interval
	}

	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), output.String())
	require.Less(t, time.Since(start), 10*time.Second)
	require.Equal(t, 0, cmd.ProcessState.ExitCode())
	require.Contains(t, output.String(), "Node stopped")
}

func TestUnknownCommandExits2(t *testing.T) {
	t.Parallel()
	err := command(t, nil, "frobnicate").Run()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	require.Equal(t, 2, exitErr.ExitCode())
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
