package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/api"
	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/telemetry"
)

func TestBackfillEndpoints(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	cfg, err := config.Load(func(k string) string { return map[string]string{"API_KEY": "k"}[k] }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	// An insert-only client: the test checks the API, not the backfill worker (jobs tests it).
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{SkipUnknownJobCheck: true})
	require.NoError(t, err)
	handler, _ := api.NewHandler(api.Deps{Config: cfg, Logger: dbtest.Logger(t), Metrics: telemetry.New(), Pool: pool, River: client, Version: "test"})
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	body := map[string]string{
		"source": "synthetic", "subject": "BTCUSDT", "kind": "candle", "granularity": "1m",
		"start": "2026-11-01T00:00:00", "end": "2026-11-02T00:00:00Z",
	}

	status, job := send(t, http.MethodPost, server.URL+"/reports/backfill", body)
	require.Equal(t, http.StatusCreated, status, "%v", job)
	require.Equal(t, "pending", job["status"])
	require.Equal(t, "2026-11-01T00:00:00Z", job["start_ts"], "a naive start is UTC")

	status, conflict := send(t, http.MethodPost, server.URL+"/reports/backfill", body)
	require.Equal(t, http.StatusConflict, status, "one active backfill per scope: %v", conflict)

	body["subject"], body["end"] = "ETHUSDT", "2026-10-01T00:00:00Z"
	status, _ = send(t, http.MethodPost, server.URL+"/reports/backfill", body)
	require.Equal(t, http.StatusUnprocessableEntity, status, "end before start")
	body["end"], body["granularity"] = "2026-11-02T00:00:00Z", "fortnightly"
	status, _ = send(t, http.MethodPost, server.URL+"/reports/backfill", body)
	require.Equal(t, http.StatusUnprocessableEntity, status, "unknown granularity")

	status, list := getJSON(t, server.URL+"/reports/backfill/jobs")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list, 1)
	status, one := getJSON(t, server.URL+"/reports/backfill/jobs/"+job["id"].(string))
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 0, one.(map[string]any)["progress_pct"])
	status, _ = getJSON(t, server.URL+"/reports/backfill/jobs/nope")
	require.Equal(t, http.StatusNotFound, status)

	resp, err := http.Get(server.URL + "/reports/backfill/jobs")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "admin tier")
}
