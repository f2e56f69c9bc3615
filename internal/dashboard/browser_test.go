package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/crunchnode/crunch-node/internal/dashboard"
)

// The browser test loads the dashboard in headless Chromium (Debian's "chromium" package)
// against fake report endpoints shaped like the report API contract, and checks the DOM the
// page's scripts built. It installs nothing: CI installs Chromium and fails this test
// without it; a developer machine without it skips with a message saying how to install it.

// naive formats a chart x value as the report API does: UTC without a zone suffix.
func naive(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") }

func zoned(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// fakeReports is the report API for one scenario: path → JSON body, nil for a 404.
type fakeReports struct {
	bodies map[string]any

	mu       sync.Mutex
	requests map[string]url.Values // last query seen per path
}

func (f *fakeReports) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests[r.URL.Path] = r.URL.Query()
	f.mu.Unlock()
	body, ok := f.bodies[r.URL.Path]
	if !ok || body == nil {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"title":"Not Found","status":404,"detail":"not found"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeReports) query(path string) (url.Values, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, ok := f.requests[path]
	return q, ok
}

func serveDashboard(t *testing.T, bodies map[string]any) (*httptest.Server, *fakeReports) {
	t.Helper()
	reports := &fakeReports{bodies: bodies, requests: map[string]url.Values{}}
	mux := http.NewServeMux()
	mux.Handle("/reports/", reports)
	mux.Handle("/", dashboard.Handler())
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)
	return server, reports
}

var columns = []map[string]any{
	{"id": 1, "type": "MODEL", "property": "model_id", "format": nil, "displayName": "Model", "tooltip": nil,
		"nativeConfiguration": map[string]any{"type": "model", "statusProperty": "status"}, "order": 0},
	{"id": 2, "type": "VALUE", "property": "score_recent", "format": "decimal-2", "displayName": "Score Recent",
		"tooltip": "Rolling score over 24h", "nativeConfiguration": nil, "order": 10},
	{"id": 3, "type": "VALUE", "property": "score_steady", "format": "decimal-2", "displayName": "Score Steady",
		"tooltip": "Rolling score over 72h", "nativeConfiguration": nil, "order": 20},
	{"id": 4, "type": "VALUE", "property": "ic", "format": "decimal-4", "displayName": "IC",
		"tooltip": "Information coefficient", "nativeConfiguration": nil, "order": 100},
	{"id": 5, "type": "VALUE", "property": "hit_rate", "format": "percentage", "displayName": "Hit Rate",
		"tooltip": nil, "nativeConfiguration": nil, "order": 110},
}

type fakeModel struct {
	id, name, cruncher string
	score              float64
}

// In rank order.
var fakeModels = []fakeModel{
	{id: "m-delta", name: "gradient-boost", cruncher: "dave", score: 0.84},
	{id: "m-alpha", name: "mean-reversion", cruncher: "alice", score: 0.61},
	{id: "m-gamma", name: "tracker", cruncher: "carol", score: 0.35},
	{id: "m-beta", name: "momentum", cruncher: "bob", score: -0.12},
}

// withData is a running competition: four models, a day of hourly snapshots, two scopes,
// one live and one stale feed, and two checkpoints.
func withData(now time.Time) map[string]any {
	var models, leaderboard, metrics, params, ranking []map[string]any
	for i, m := range fakeModels {
		models = append(models, map[string]any{
			"model_id": m.id, "model_name": m.name, "cruncher_name": m.cruncher,
			"cruncher_id": "c-" + m.cruncher, "deployment_id": "dep-" + m.id,
		})
		flat := map[string]any{
			"score_recent": m.score, "score_steady": m.score * 0.9, "score_anchor": m.score * 0.8,
			"ic": m.score / 10, "hit_rate": 0.5 + m.score/10,
		}
		row := map[string]any{
			"created_at": zoned(now), "model_id": m.id,
			"score_metrics": flat,
			"score_ranking": map[string]any{"key": "score_recent", "value": m.score, "direction": "desc"},
			"rank":          i + 1,
			// The UI takes names from /reports/models, not from here.
			"model_name": "stale-name", "cruncher_name": "",
		}
		for k, v := range flat {
			row[k] = v
		}
		leaderboard = append(leaderboard, row)
		for h := 24; h >= 1; h-- {
			wave := float64((h*(i+3))%7) / 20
			metrics = append(metrics, map[string]any{
				"model_id": m.id, "performed_at": naive(now.Add(-time.Duration(h) * time.Hour)),
				"prediction_count": 240, "value": m.score + wave - 0.15, "ic": m.score/10 + wave/10,
			})
		}
		for j, scope := range []string{"BTCUSDT-60s", "ETHUSDT-300s"} {
			v := m.score - 0.2*float64(j)
			params = append(params, map[string]any{
				"model_id": m.id, "scope_key": scope, "scope": map[string]any{"subject": strings.Split(scope, "-")[0]},
				"score_metrics": map[string]any{"score_recent": v},
				"score_ranking": map[string]any{"key": "score_recent", "value": v, "direction": "desc"},
				"score_recent":  v, "performed_at": naive(now.Add(-time.Hour)),
			})
		}
		ranking = append(ranking, map[string]any{
			"model_id": m.id, "model_name": m.name, "cruncher_name": m.cruncher, "rank": i + 1,
			"prediction_count": 5760, "snapshot_count": 24,
		})
	}
	checkpoint := func(id string, end time.Time, status string, pcts []int64) map[string]any {
		var rewards []map[string]any
		for i, p := range pcts {
			rewards = append(rewards, map[string]any{"cruncher_index": i, "reward_pct": p})
		}
		return map[string]any{
			"id": id, "period_start": zoned(end.Add(-7 * 24 * time.Hour)), "period_end": zoned(end), "status": status,
			"entries": []map[string]any{{
				"crunch": "CrunchPubkey111", "cruncher_rewards": rewards,
				"compute_provider_rewards": []map[string]any{}, "data_provider_rewards": []map[string]any{},
			}},
			"meta":       map[string]any{"snapshot_count": 96, "model_count": len(ranking), "ranking": ranking},
			"created_at": zoned(end), "tx_hash": nil, "submitted_at": nil,
		}
	}
	return map[string]any{
		"/reports/checkpoints": []map[string]any{
			checkpoint("CKP_20260320_000000", now.Add(-time.Hour), "PENDING", []int64{400_000_000, 250_000_000, 200_000_000, 150_000_000}),
			checkpoint("CKP_20260313_000000", now.Add(-169*time.Hour), "PAID", []int64{350_000_000, 350_000_000, 200_000_000, 100_000_000}),
		},
		"/reports/feeds": []map[string]any{
			{"source": "binance", "subject": "BTCUSDT", "kind": "candle", "granularity": "1m", "record_count": 125_340,
				"oldest_ts": zoned(now.Add(-90 * 24 * time.Hour)), "newest_ts": zoned(now.Add(-40 * time.Second)),
				"watermark_ts": zoned(now.Add(-40 * time.Second)), "watermark_updated_at": zoned(now.Add(-35 * time.Second))},
			{"source": "pyth", "subject": "ETHUSD", "kind": "tick", "granularity": "1s", "record_count": 9_812,
				"oldest_ts": zoned(now.Add(-72 * time.Hour)), "newest_ts": zoned(now.Add(-50 * time.Hour)),
				"watermark_ts": zoned(now.Add(-50 * time.Hour)), "watermark_updated_at": zoned(now.Add(-50 * time.Hour))},
		},
		"/reports/leaderboard":                leaderboard,
		"/reports/models":                     models,
		"/reports/models/metrics":             metrics,
		"/reports/models/params":              params,
		"/reports/schema/leaderboard-columns": columns,
	}
}

// empty is a node that has just started: no models, no feeds, no checkpoints endpoint yet.
func empty() map[string]any {
	return map[string]any{
		"/reports/checkpoints":                nil,
		"/reports/feeds":                      []any{},
		"/reports/leaderboard":                []any{},
		"/reports/models":                     []any{},
		"/reports/models/metrics":             []any{},
		"/reports/models/params":              []any{},
		"/reports/schema/leaderboard-columns": columns,
	}
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium not found at %s (%v): CI must install it (apt-get install -y chromium)", path, err)
		}
		t.Skipf("Chromium not found at %s: install it with `apt-get install -y chromium` (or set CHROMIUM) to run the browser test; in CI (CI=true) this test fails instead", path)
	}
	return path
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, "dashboard")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// loadInChromium opens url in headless Chromium, lets the page's scripts run for five
// seconds of virtual time (which does not advance while requests are pending, so the
// result does not depend on the machine's speed), writes a screenshot to screenshot, and
// returns the DOM as the scripts left it.
func loadInChromium(t *testing.T, chromium, pageURL, screenshot string) *html.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-dev-shm-usage",
		"--no-first-run",
		"--hide-scrollbars",
		"--force-device-scale-factor=1",
		"--window-size=1440,1500",
		"--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=5000",
		"--screenshot="+screenshot,
		"--dump-dom",
		pageURL,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.NoError(t, err, "chromium failed; stderr:\n%s", stderr.String())
	require.NotZero(t, stdout.Len(), "chromium dumped no DOM; stderr:\n%s", stderr.String())
	doc, err := html.Parse(&stdout)
	require.NoError(t, err)

	info, err := os.Stat(screenshot)
	require.NoError(t, err, "no screenshot; stderr:\n%s", stderr.String())
	require.NotZero(t, info.Size())
	t.Logf("screenshot: %s", screenshot)
	return doc
}

// ---- DOM helpers ----

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func findAll(root *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return out
}

func byID(t *testing.T, root *html.Node, id string) *html.Node {
	t.Helper()
	found := findAll(root, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
	require.Len(t, found, 1, "element #%s", id)
	return found[0]
}

func byTag(root *html.Node, tag string) []*html.Node {
	return findAll(root, func(n *html.Node) bool { return n.Data == tag })
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func texts(nodes []*html.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = text(n)
	}
	return out
}

// requireChart checks the drawn/empty marker every chart sets after rendering.
func requireChart(t *testing.T, doc *html.Node, id string, drawn bool) *html.Node {
	t.Helper()
	chart := byID(t, doc, id)
	require.Equal(t, "svg", chart.Data)
	drawnAttr, hasDrawn := attr(chart, "data-drawn")
	emptyAttr, hasEmpty := attr(chart, "data-empty")
	if drawn {
		require.True(t, hasDrawn && drawnAttr == "true", "#%s has no data-drawn=true", id)
		require.False(t, hasEmpty, "#%s is drawn and empty at once", id)
	} else {
		require.True(t, hasEmpty && emptyAttr == "true", "#%s has no data-empty=true", id)
		require.False(t, hasDrawn, "#%s is empty and drawn at once", id)
	}
	return chart
}

func requireNoScriptErrors(t *testing.T, doc *html.Node) {
	t.Helper()
	errorsBox := byID(t, doc, "errors")
	_, hidden := attr(errorsBox, "hidden")
	require.True(t, hidden, "script errors: %s", text(errorsBox))
	require.Empty(t, text(errorsBox))
}

func TestBrowser(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	artifacts := artifactDir(t)

	t.Run("WithData", func(t *testing.T) {
		t.Parallel()
		now := time.Now().UTC().Truncate(time.Second)
		server, reports := serveDashboard(t, withData(now))
		doc := loadInChromium(t, chromium, server.URL+"/", filepath.Join(artifacts, "dashboard-with-data.png"))
		requireNoScriptErrors(t, doc)
		require.True(t, strings.HasPrefix(text(byID(t, doc, "status")), "Updated "), text(byID(t, doc, "status")))

		// Leaderboard: the server's rank order, columns from the schema, names from
		// /reports/models, values in the columns' formats.
		require.Equal(t, []string{"#", "Model", "Score Recent", "Score Steady", "IC", "Hit Rate"},
			texts(byTag(byID(t, doc, "leaderboard-head"), "th")))
		rows := byTag(byID(t, doc, "leaderboard-rows"), "tr")
		require.Len(t, rows, len(fakeModels))
		for i, m := range fakeModels {
			id, _ := attr(rows[i], "data-model-id")
			require.Equal(t, m.id, id)
			cells := texts(byTag(rows[i], "td"))
			require.Equal(t, fmt.Sprint(i+1), cells[0])
			require.Equal(t, m.cruncher+"/"+m.name+" "+m.id, cells[1])
			require.Equal(t, fmt.Sprintf("%.2f", m.score), cells[2])
		}
		require.Equal(t, []string{"1", "dave/gradient-boost m-delta", "0.84", "0.76", "0.0840", "58.40%"},
			texts(byTag(rows[0], "td")))

		// Score over time: one line per model, the "value" series by default.
		metrics := requireChart(t, doc, "chart-metrics", true)
		require.Len(t, byTag(metrics, "path"), len(fakeModels))
		require.Len(t, byTag(metrics, "circle"), 24*len(fakeModels))
		select_ := byID(t, doc, "metric-field")
		require.Equal(t, []string{"ic", "value"}, texts(byTag(select_, "option")))
		require.Equal(t, []string{"dave/gradient-boost", "alice/mean-reversion", "carol/tracker", "bob/momentum"},
			texts(byTag(byID(t, doc, "legend-metrics"), "span")))
		require.Len(t, byTag(byID(t, doc, "legend-metrics"), "span"), len(fakeModels))

		// Score by scope: one bar per model and scope.
		params := requireChart(t, doc, "chart-params", true)
		require.Len(t, byTag(params, "rect"), 2*len(fakeModels))
		require.Equal(t, "ranking value: score_recent", text(byID(t, doc, "params-note")))

		// Feeds: counts as numbers, a live and a stale badge.
		feeds := byTag(byID(t, doc, "feeds-rows"), "tr")
		require.Len(t, feeds, 2)
		require.Contains(t, text(feeds[0]), "125,340")
		require.Equal(t, "Up", text(findAll(feeds[0], func(n *html.Node) bool { c, _ := attr(n, "class"); return c == "badge up" })[0]))
		require.Equal(t, "Stale", text(findAll(feeds[1], func(n *html.Node) bool { c, _ := attr(n, "class"); return c == "badge stale" })[0]))

		// Checkpoints: the latest one's emission as bars, both in the table.
		emission := requireChart(t, doc, "chart-emission", true)
		require.Len(t, byTag(emission, "rect"), 4)
		require.Contains(t, text(emission), "1. dave/gradient-boost")
		require.Contains(t, text(emission), "40.0%")
		checkpoints := byTag(byID(t, doc, "checkpoints-rows"), "tr")
		require.Len(t, checkpoints, 2)
		require.Contains(t, text(checkpoints[0]), "PENDING")
		require.Contains(t, text(checkpoints[0]), "gradient-boost 40.0%")

		// Links to the other operator surfaces.
		var hrefs []string
		for _, a := range byTag(doc, "a") {
			href, _ := attr(a, "href")
			hrefs = append(hrefs, href)
		}
		require.Subset(t, hrefs, []string{"docs", "riverui/"})

		// The widget requests carry the contract's window parameters.
		for _, path := range []string{"/reports/models/metrics", "/reports/models/params"} {
			q, ok := reports.query(path)
			require.True(t, ok, "%s was not requested", path)
			require.Equal(t, "m-delta,m-alpha,m-gamma,m-beta", q.Get("projectIds"), path)
			start, err := time.Parse(time.RFC3339Nano, q.Get("start"))
			require.NoError(t, err, path)
			end, err := time.Parse(time.RFC3339Nano, q.Get("end"))
			require.NoError(t, err, path)
			require.Equal(t, 7*24*time.Hour, end.Sub(start), path)
		}
		q, ok := reports.query("/reports/checkpoints")
		require.True(t, ok)
		require.Equal(t, "5", q.Get("limit"))
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		server, reports := serveDashboard(t, empty())
		doc := loadInChromium(t, chromium, server.URL+"/", filepath.Join(artifacts, "dashboard-empty.png"))
		requireNoScriptErrors(t, doc)

		require.Equal(t, "No ranked models yet", text(byID(t, doc, "leaderboard-rows")))
		require.Equal(t, "No snapshots in the last 7 days", text(requireChart(t, doc, "chart-metrics", false)))
		require.Equal(t, "No scored scopes in the last 7 days", text(requireChart(t, doc, "chart-params", false)))
		require.Equal(t, "No checkpoints yet", text(requireChart(t, doc, "chart-emission", false)))
		require.Equal(t, "No checkpoints yet", text(byID(t, doc, "checkpoints-rows")))
		require.Equal(t, "No feeds yet", text(byID(t, doc, "feeds-rows")))
		// A 404 from an endpoint that does not exist yet is "nothing", not a failure.
		require.True(t, strings.HasPrefix(text(byID(t, doc, "status")), "Updated "), text(byID(t, doc, "status")))

		// Without models there is nothing to ask the widget endpoints for.
		_, asked := reports.query("/reports/models/metrics")
		require.False(t, asked)
	})
}
