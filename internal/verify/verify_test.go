package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/verify"
)

// now pins the predictions window.
var now = time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)

// fakeNode serves canned report API answers shaped like the contract
// (reference/report-api-contract.md and internal/api).
type fakeNode struct {
	apiKey      string
	health      func() (int, string)
	leaderboard string
	models      string
	// predictions answers the nth /reports/predictions request (from 1).
	predictions func(n int) string

	mu       sync.Mutex
	queries  []string
	requests atomic.Int64
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	// As on a node with API_READ_AUTH=true: the predictions are read tier, the rest public.
	if f.apiKey != "" && r.URL.Path == "/reports/predictions" && r.Header.Get("X-API-Key") != f.apiKey {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"title":"Unauthorized","status":401,"detail":"missing or invalid API key"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/healthz":
		status, body := http.StatusOK, `{"status":"ok","version":"test"}`
		if f.health != nil {
			status, body = f.health()
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	case "/reports/models":
		_, _ = w.Write([]byte(f.models))
	case "/reports/predictions":
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		n := len(f.queries)
		f.mu.Unlock()
		_, _ = w.Write([]byte(f.predictions(n)))
	case "/reports/leaderboard":
		_, _ = w.Write([]byte(f.leaderboard))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeNode) predictionQueries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

const (
	twoModels = `[
		{"model_id":"1","model_name":"mean-reversion","cruncher_id":"local-0001","cruncher_name":"alice","deployment_id":"1_x"},
		{"model_id":"2","model_name":"momentum","cruncher_id":"local-0002","cruncher_name":"bob","deployment_id":"2_x"}]`
	leaderboard = `[
		{"model_id":"2","model_name":"momentum","cruncher_name":"bob","rank":1,"created_at":"2026-03-20T11:59:00Z",
		 "score_metrics":{"score_1h":4.5},"score_ranking":{"key":"score_1h","value":4.5,"direction":"desc"},"score_1h":4.5},
		{"model_id":"1","model_name":"mean-reversion","cruncher_name":"alice","rank":999999,"created_at":"2026-03-20T11:59:00Z",
		 "score_metrics":{},"score_ranking":{"key":"score_1h","value":null,"direction":"desc"}}]`
)

// predictionRows renders /reports/predictions rows; nil scores are unscored.
func predictionRows(t *testing.T, rows ...predictionRow) string {
	t.Helper()
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		row := map[string]any{
			"model_id": r.model, "prediction_config_id": 1, "scope_key": "btcusdt-60s", "scope": map[string]any{"subject": "BTCUSDT"},
			"performed_at": "2026-03-20T11:58:00", "score_value": nil, "score_failed": true, "score_success": false,
			"score_failed_reason": "Prediction not scored", "scored_at": nil, "status": r.status,
		}
		if r.score != nil {
			row["score_value"], row["score_failed"], row["score_success"] = *r.score, false, true
			row["score_failed_reason"], row["scored_at"], row["status"] = nil, "2026-03-20T11:59:00", "SCORED"
		}
		out[i] = row
	}
	data, err := json.Marshal(out)
	require.NoError(t, err)
	return string(data)
}

type predictionRow struct {
	model  string
	score  *float64
	status string
}

func scored(model string, v float64) predictionRow { return predictionRow{model: model, score: &v} }
func pending(model string) predictionRow           { return predictionRow{model: model, status: "PENDING"} }

func start(t *testing.T, f *fakeNode) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

func options(url string, out *bytes.Buffer) verify.Options {
	return verify.Options{
		Now:     func() time.Time { return now },
		Out:     out,
		Poll:    10 * time.Millisecond,
		Timeout: 400 * time.Millisecond,
		URL:     url,
	}
}

func TestPasses(t *testing.T) {
	t.Parallel()
	node := &fakeNode{
		leaderboard: leaderboard,
		models:      twoModels,
		predictions: func(int) string {
			return predictionRows(t, scored("1", -1.5), scored("2", 4.5), scored("2", 0), pending("1"), predictionRow{model: "1", status: "FAILED"})
		},
	}
	var out bytes.Buffer
	opts := options(start(t, node), &out)
	opts.Timeout = time.Minute // passing must not wait for the timeout
	require.NoError(t, verify.Run(t.Context(), opts))

	queries := node.predictionQueries()
	require.Len(t, queries, 1)
	require.Equal(t, "end=2026-03-20T12%3A00%3A00.000Z&projectIds=1%2C2&start=2026-03-20T11%3A00%3A00.000Z", queries[0])

	report := out.String()
	require.Contains(t, report, "PASS: node healthy, 2 models, 3 scored predictions in the last hour, leaderboard of 2")
	require.Contains(t, report, "Health:       ok, version test")
	require.Contains(t, report, "Predictions:  5 in the last hour, 3 scored")
	require.Regexp(t, `rank\s+model\s+cruncher\s+score_1h`, report)
	require.Regexp(t, `\n\s+1\s+momentum\s+bob\s+4\.5\s*\n`, report)
	require.Regexp(t, `\n\s+-\s+mean-reversion\s+alice\s+-\s*\n`, report, "unranked rows show no rank")
	require.Regexp(t, `\n\s+1\s+mean-reversion\s+3\s+1\s+1\s+1\s+-1\.5\s*\n`, report)
	require.Regexp(t, `\n\s+2\s+momentum\s+2\s+2\s+0\s+0\s+2\.25\s*\n`, report)
	require.NotContains(t, report, "waiting")
}

func TestPassesOncePredictionsAreScored(t *testing.T) {
	t.Parallel()
	node := &fakeNode{
		leaderboard: leaderboard,
		models:      twoModels,
		predictions: func(n int) string {
			if n < 3 {
				return predictionRows(t, pending("1"), pending("2"))
			}
			return predictionRows(t, scored("1", 1), scored("2", 2))
		},
	}
	var out bytes.Buffer
	opts := options(start(t, node), &out)
	opts.Timeout = time.Minute
	require.NoError(t, verify.Run(t.Context(), opts))
	require.Len(t, node.predictionQueries(), 3)
	require.Equal(t, 1, strings.Count(out.String(), "waiting"), "an unchanged problem is printed once:\n%s", out.String())
	require.Contains(t, out.String(), "0 scored predictions in the last hour (need 2; 2 predictions in all)")
	require.Contains(t, out.String(), "PASS")
}

func TestFails(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		node *fakeNode
		want []string
	}{
		"no_models": {
			node: &fakeNode{leaderboard: `[]`, models: `[]`, predictions: func(int) string { return `[]` }},
			want: []string{"no models yet", "leaderboard is empty"},
		},
		"all_zero": {
			node: &fakeNode{leaderboard: leaderboard, models: twoModels, predictions: func(int) string {
				return predictionRows(t, scored("1", 0), scored("2", 0), scored("2", 0))
			}},
			want: []string{"score quality: all 3 scores are 0"},
		},
		"identical": {
			node: &fakeNode{leaderboard: leaderboard, models: twoModels, predictions: func(int) string {
				return predictionRows(t, scored("1", 2.5), scored("2", 2.5), scored("2", 2.5), scored("1", 2.5))
			}},
			want: []string{"score quality: all 4 scores are identical (2.5)"},
		},
		"too_few_scored": {
			node: &fakeNode{leaderboard: leaderboard, models: twoModels, predictions: func(int) string {
				return predictionRows(t, scored("1", 2.5), pending("2"), predictionRow{model: "2", status: "FAILED"})
			}},
			want: []string{"1 scored predictions in the last hour (need 2; 3 predictions in all)"},
		},
		"no_leaderboard": {
			node: &fakeNode{leaderboard: `[]`, models: twoModels, predictions: func(int) string {
				return predictionRows(t, scored("1", 1), scored("2", 2))
			}},
			want: []string{"leaderboard is empty"},
		},
		"unhealthy": {
			node: &fakeNode{
				health: func() (int, string) {
					return http.StatusServiceUnavailable, `{"status":"unavailable","reason":"database unreachable: refused"}`
				},
				leaderboard: leaderboard, models: twoModels, predictions: func(int) string { return predictionRows(t, scored("1", 1), scored("2", 2)) },
			},
			want: []string{`node unhealthy: status "unavailable": database unreachable: refused`},
		},
		"not_a_node": {
			node: &fakeNode{
				health:      func() (int, string) { return http.StatusNotFound, "404 page not found" },
				leaderboard: leaderboard, models: twoModels, predictions: func(int) string { return predictionRows(t, scored("1", 1), scored("2", 2)) },
			},
			want: []string{"node unhealthy: GET /healthz: 404 Not Found: 404 page not found"},
		},
		"needs_key": {
			node: &fakeNode{apiKey: "secret", leaderboard: leaderboard, models: twoModels, predictions: func(int) string { return `[]` }},
			want: []string{"GET /reports/predictions: 401 Unauthorized: missing or invalid API key (the node wants an API key: --api-key or API_KEY)"},
		},
		"garbage": {
			node: &fakeNode{leaderboard: `{"oops":1}`, models: twoModels, predictions: func(int) string { return predictionRows(t, scored("1", 1), scored("2", 2)) }},
			want: []string{"GET /reports/leaderboard: unexpected answer"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := verify.Run(t.Context(), options(start(t, tc.node), &out))
			require.ErrorIs(t, err, verify.ErrFailed)
			require.ErrorContains(t, err, "verification failed after 400ms")
			for _, want := range tc.want {
				require.ErrorContains(t, err, want)
				require.Contains(t, out.String(), "  - "+want)
			}
			require.Contains(t, out.String(), "FAIL after 400ms")
			require.NotContains(t, out.String(), "PASS")
			require.Greater(t, tc.node.requests.Load(), int64(4), "it polled")
		})
	}
}

func TestAPIKeyIsSent(t *testing.T) {
	t.Parallel()
	node := &fakeNode{apiKey: "secret", leaderboard: leaderboard, models: twoModels, predictions: func(int) string {
		return predictionRows(t, scored("1", 1), scored("2", 2))
	}}
	var out bytes.Buffer
	opts := options(start(t, node), &out)
	opts.APIKey = "secret"
	require.NoError(t, verify.Run(t.Context(), opts))
}

func TestTimeoutWhenUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	var out bytes.Buffer
	began := time.Now()
	err := verify.Run(t.Context(), options(url, &out))
	require.ErrorIs(t, err, verify.ErrFailed)
	require.ErrorContains(t, err, "node not reachable: GET /healthz")
	require.Less(t, time.Since(began), 10*time.Second)
	require.Contains(t, out.String(), "Health:       unreachable")
}

func TestInterrupted(t *testing.T) {
	t.Parallel()
	node := &fakeNode{leaderboard: `[]`, models: `[]`, predictions: func(int) string { return `[]` }}
	ctx, cancel := context.WithCancel(t.Context())
	opts := options(start(t, node), &bytes.Buffer{})
	opts.Timeout = time.Hour
	done := make(chan error, 1)
	go func() { done <- verify.Run(ctx, opts) }()
	require.Eventually(t, func() bool { return node.requests.Load() > 3 }, 10*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, verify.ErrFailed)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when its context was cancelled")
	}
}

func TestInvalidURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"localhost:8000", "://x", "http://"} {
		err := verify.Run(t.Context(), verify.Options{URL: u})
		require.ErrorContains(t, err, "invalid URL", u)
	}
}
