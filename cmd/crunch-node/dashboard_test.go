package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbtest"
)

// chromium finds the browser for the end-to-end page test: it must be there in CI
// (`make deps` installs it); elsewhere the test says how to get it and skips.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium not found at %s: CI must install it (make deps)", path)
		}
		t.Skipf("Chromium not found at %s: install it with `apt-get install -y chromium` to run this test", path)
	}
	return path
}

// TestDevNodeEndToEnd runs `crunch-node dev` (synthetic feed, the Go example models as
// model host processes, every role), waits until the leaderboard ranks three models,
// checks that River UI lists the node's jobs behind the API key, and loads the dashboard
// in headless Chromium: the leaderboard rows are there, the charts drew, and a
// screenshot is saved ($ARTIFACTS_DIR/dev-dashboard.png, else a temporary folder).
func TestDevNodeEndToEnd(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := command(t, []string{
		"DATABASE_URL=" + dbtest.NewURL(t),
		fmt.Sprintf("REPORT_API_PORT=%d", port),
		"API_KEY=e2e-key",
	}, "dev", "--quiet")
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	})

	// Within 60 s of start the leaderboard ranks at least three models (issue budget);
	// the deadline leaves room for a loaded CI machine.
	started := time.Now()
	deadline := started.Add(120 * time.Second)
	var ranked int
	for ranked < 3 {
		require.True(t, time.Now().Before(deadline), "the leaderboard never ranked 3 models; node output:\n%s", output.String())
		time.Sleep(time.Second) // polling interval
		resp, err := http.Get(base + "/reports/leaderboard")
		if err != nil {
			continue
		}
		var rows []map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&rows)
		resp.Body.Close()
		ranked = 0
		for _, row := range rows {
			if rank, ok := row["rank"].(float64); ok && rank < 999999 {
				ranked++
			}
		}
	}
	t.Logf("3 models ranked %s after start", time.Since(started).Round(time.Second))

	// River UI: admin tier.
	resp, err := http.Get(base + "/riverui/api/jobs?state=completed&limit=5")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, err := http.NewRequest(http.MethodGet, base+"/riverui/api/jobs?state=completed&limit=5", nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", "e2e-key")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var jobs struct {
		Data []struct {
			Kind string `json:"kind"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&jobs))
	resp.Body.Close()
	require.NotEmpty(t, jobs.Data, "River UI lists the node's completed jobs")

	// The dashboard, in a real browser.
	artifacts := os.Getenv("ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(artifacts, 0o755))
	screenshot := filepath.Join(artifacts, "dev-dashboard.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	browserCmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--no-first-run",
		"--hide-scrollbars", "--window-size=1440,1500", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=8000", "--screenshot="+screenshot, "--dump-dom", base+"/")
	var dom, stderr bytes.Buffer
	browserCmd.Stdout, browserCmd.Stderr = &dom, &stderr
	require.NoError(t, browserCmd.Run(), "chromium: %s", stderr.String())
	page := dom.String()
	info, err := os.Stat(screenshot)
	require.NoError(t, err)
	require.NotZero(t, info.Size())
	t.Logf("screenshot: %s", screenshot)

	body := page[strings.Index(page, `id="leaderboard-rows"`):]
	body = body[:strings.Index(body, "</tbody>")]
	require.GreaterOrEqual(t, strings.Count(body, "<tr"), 3, "leaderboard rows on the page")
	require.Contains(t, body, "momentum")
	drawn := regexp.MustCompile(`data-drawn="true"`).FindAllString(page, -1)
	require.GreaterOrEqual(t, len(drawn), 2, "the score-over-time and by-scope charts drew")
	require.Regexp(t, `id="errors"[^>]*hidden`, page, "no script errors shown")
}
