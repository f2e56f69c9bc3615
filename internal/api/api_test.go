package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/api"
	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/telemetry"
)

type testBundle struct {
	server *httptest.Server
}

func setup(t *testing.T, pool *pgxpool.Pool, env map[string]string) *testBundle {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	handler, _ := api.NewHandler(api.Deps{
		Config:   cfg,
		Logger:   dbtest.Logger(t),
		Metrics:  telemetry.New(),
		Pool:     pool,
		Version:  "test",
		Warnings: func() []string { return nil },
	})
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	return &testBundle{server: server}
}

func get(t *testing.T, url string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(body, &decoded), string(body))
	return resp.StatusCode, decoded
}

func TestHealth(t *testing.T) {
	t.Parallel()

	t.Run("OkWithDatabase", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t, dbtest.NewPool(t), nil)
		status, body := get(t, bundle.server.URL+"/healthz", nil)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "ok", body["status"])
		require.Equal(t, "test", body["version"])
	})

	t.Run("UnavailableWithoutDatabase", func(t *testing.T) {
		t.Parallel()
		// Port 1 on loopback refuses connections; pgxpool connects lazily, so the pool is
		// created and every query fails, as during an outage.
		pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/x?connect_timeout=1")
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		bundle := setup(t, pool, nil)
		status, body := get(t, bundle.server.URL+"/healthz", nil)
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, "unavailable", body["status"])
		require.Contains(t, body["reason"], "database unreachable")
	})
}

func TestRouter(t *testing.T) {
	t.Parallel()
	bundle := setup(t, dbtest.NewPool(t), map[string]string{"API_KEY": "k", "CRUNCH_PUBKEY": "pk"})

	t.Run("Info", func(t *testing.T) {
		t.Parallel()
		status, body := get(t, bundle.server.URL+"/info", nil)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, map[string]any{"crunch_address": "pk", "crunch_id": "starter-challenge", "network": "devnet"}, body)
	})

	t.Run("OpenAPIListsHealth", func(t *testing.T) {
		t.Parallel()
		status, body := get(t, bundle.server.URL+"/openapi.json", nil)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "3.1.0", body["openapi"])
		require.Contains(t, body["paths"], "/healthz")
	})

	t.Run("AdminPathWithoutKeyIs401", func(t *testing.T) {
		t.Parallel()
		status, body := get(t, bundle.server.URL+"/custom/anything", nil)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "API key required", body["detail"])
	})

	t.Run("UnknownPathIs404JSON", func(t *testing.T) {
		t.Parallel()
		status, body := get(t, bundle.server.URL+"/reports/nothing-here", nil)
		require.Equal(t, http.StatusNotFound, status)
		require.EqualValues(t, 404, body["status"])
	})

	t.Run("DocsPage", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Get(bundle.server.URL + "/docs")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(body), "openapi.json")
	})

	t.Run("MetricsCountRequests", func(t *testing.T) {
		t.Parallel()
		_, _ = get(t, bundle.server.URL+"/info", nil)
		resp, err := http.Get(bundle.server.URL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		require.Contains(t, string(body), `crunch_http_requests_total{method="GET",route="/info",status="200"}`)
		require.Contains(t, string(body), "go_goroutines")
	})
}
