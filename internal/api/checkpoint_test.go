package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/emission"
	"github.com/crunchnode/crunch-node/jobs"
)

func send(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	data, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(method, url, bytes.NewReader(data))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(raw, &decoded), string(raw))
	return resp.StatusCode, decoded
}

func getJSON(t *testing.T, url string) (int, any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("X-API-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var decoded any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&decoded))
	return resp.StatusCode, decoded
}

func insertCheckpoint(t *testing.T, ctx context.Context, db dbsqlc.DBTX, id string, start time.Time, models int) {
	t.Helper()
	var ranking []jobs.RankedModel
	var entries []emission.Entry
	for i := range models {
		id := string(rune('a' + i))
		ranking = append(ranking, jobs.RankedModel{ModelID: id, Rank: i + 1, PredictionCount: 10, ResultSummary: map[string]any{"value": float64(models - i)}})
		entries = append(entries, emission.Entry{ModelID: id})
	}
	doc, err := emission.Build(emission.StrategyTiers, entries, emission.Identities{Crunch: "crunch-key"})
	require.NoError(t, err)
	entriesJSON, _ := json.Marshal([]emission.Checkpoint{doc})
	meta, _ := json.Marshal(map[string]any{"ranking": ranking, "model_count": models})
	root := "ab" + string(bytes.Repeat([]byte("0"), 62))
	_, err = dbsqlc.New().CheckpointInsert(ctx, db, &dbsqlc.CheckpointInsertParams{
		Entries: entriesJSON, ID: id, MerkleRoot: &root, Meta: meta, PeriodStart: start, PeriodEnd: start.Add(time.Hour),
	})
	require.NoError(t, err)
}

func TestCheckpointEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	bundle := setup(t, pool, map[string]string{"API_KEY": "k"})
	base := bundle.server.URL
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	insertCheckpoint(t, ctx, pool, "CKP_1", start, 3)
	insertCheckpoint(t, ctx, pool, "CKP_2", start.Add(time.Hour), 3)

	t.Run("ListCarriesMerkleRoot", func(t *testing.T) {
		t.Parallel()
		status, body := getJSON(t, base+"/reports/checkpoints")
		require.Equal(t, http.StatusOK, status)
		list := body.([]any)
		require.Len(t, list, 2)
		first := list[0].(map[string]any)
		require.Equal(t, "CKP_2", first["id"], "newest first")
		require.NotEmpty(t, first["merkle_root"])
	})

	t.Run("LatestPrizesIsReachable", func(t *testing.T) {
		t.Parallel()
		status, body := getJSON(t, base+"/reports/checkpoints/latest/prizes?total_prize=1000")
		require.Equal(t, http.StatusOK, status)
		prizes := body.(map[string]any)["prizes"].([]any)
		require.Len(t, prizes, 3)
		require.EqualValues(t, 500, prizes[0].(map[string]any)["prize"], "3 models: 50/25/25 %")
	})

	t.Run("AdminNeedsKey", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Get(base + "/reports/checkpoints/latest")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})

	t.Run("Rewards", func(t *testing.T) {
		t.Parallel()
		// CKP_1's status moves in Lifecycle; its emission, read here, never does.
		status, body := getJSON(t, base+"/reports/checkpoints/rewards?model_id=a&projectIds=x&start=2026-01-01T00:00:00.000Z")
		require.Equal(t, http.StatusOK, status)
		rows := body.([]any)
		require.Len(t, rows, 2)
		row := rows[0].(map[string]any)
		require.EqualValues(t, 50, row["reward_pct"])
		require.EqualValues(t, 3, row["value"], "summary fields are flattened")
		require.NotContains(t, row["period_end"], "Z", "chart x values are naive")
	})

	t.Run("CLIFormatAndEmission", func(t *testing.T) {
		t.Parallel()
		status, body := getJSON(t, base+"/reports/checkpoints/CKP_1/emission/cli-format")
		require.Equal(t, http.StatusOK, status)
		require.EqualValues(t, 25, body.(map[string]any)["crunchEmission"].(map[string]any)["c"])
		status, _ = getJSON(t, base+"/reports/checkpoints/CKP_9/emission")
		require.Equal(t, http.StatusNotFound, status)
	})

	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		url := base + "/reports/checkpoints/CKP_1"
		status, _ := send(t, http.MethodPatch, url+"/status", map[string]string{"status": "CLAIMABLE"})
		require.Equal(t, http.StatusConflict, status, "no skipping")
		status, _ = send(t, http.MethodPatch, url+"/status", map[string]string{"status": "DONE"})
		require.Equal(t, http.StatusUnprocessableEntity, status)
		status, _ = send(t, http.MethodPost, base+"/reports/checkpoints/CKP_9/confirm", map[string]string{"tx_hash": "0x1"})
		require.Equal(t, http.StatusNotFound, status)
		status, _ = send(t, http.MethodPost, url+"/confirm", map[string]string{"tx_hash": ""})
		require.Equal(t, http.StatusUnprocessableEntity, status)

		status, body := send(t, http.MethodPost, url+"/confirm", map[string]string{"tx_hash": "0xabc"})
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "SUBMITTED", body["status"])
		require.Equal(t, "0xabc", body["tx_hash"])
		require.NotNil(t, body["submitted_at"])

		status, _ = send(t, http.MethodPost, url+"/confirm", map[string]string{"tx_hash": "0xdef"})
		require.Equal(t, http.StatusConflict, status, "confirm only from PENDING")
		status, body = send(t, http.MethodPatch, url+"/status", map[string]string{"status": "CLAIMABLE"})
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "CLAIMABLE", body["status"])
		status, _ = send(t, http.MethodPatch, url+"/status", map[string]string{"status": "SUBMITTED"})
		require.Equal(t, http.StatusConflict, status, "never backwards")
		status, body = send(t, http.MethodPatch, url+"/status", map[string]string{"status": "PAID"})
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "PAID", body["status"])
	})
}
