package customsql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/customsql"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/testfactory"
)

// serve loads dir and serves its endpoints the way the API mounts them: under a chi
// router at /custom.
func serve(t *testing.T, pool *pgxpool.Pool, dir string, opts customsql.Options) *httptest.Server {
	t.Helper()
	set, errs := customsql.Load(dir)
	require.Empty(t, errs)
	router := chi.NewRouter()
	router.Mount("/custom", set.Handler(pool, dbtest.Logger(t), opts))
	server := httptest.NewServer(router)
	t.Cleanup(server.Close)
	return server
}

// endpointsDir writes the given files, name → SQL, into a fresh directory.
func endpointsDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".sql"), []byte(content), 0o644))
	}
	return dir
}

type response struct {
	body   []byte
	header http.Header
	status int
}

func get(t *testing.T, url string) response {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{body: body, header: resp.Header, status: resp.StatusCode}
}

func (r response) rows(t *testing.T) []map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(r.body, &rows), string(r.body))
	return rows
}

func (r response) problem(t *testing.T, status int) string {
	t.Helper()
	require.Equal(t, status, r.status, string(r.body))
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"))
	var problem map[string]any
	require.NoError(t, json.Unmarshal(r.body, &problem))
	require.Equal(t, http.StatusText(status), problem["title"])
	require.Equal(t, float64(status), problem["status"])
	detail, ok := problem["detail"].(string)
	require.True(t, ok, string(r.body))
	return detail
}

// seedLeaderboard gives each model one overall snapshot in the recent window with the
// given value, then refreshes the leaderboard view.
func seedLeaderboard(ctx context.Context, t *testing.T, pool *pgxpool.Pool, values map[string]float64) {
	t.Helper()
	periodEnd := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour)
	for id, value := range values {
		testfactory.Model(ctx, t, pool, &testfactory.ModelOpts{ID: testfactory.Ptr(id), Name: testfactory.Ptr("name-" + id)})
		_, err := pool.Exec(ctx, `INSERT INTO snapshots (id, model_id, scope_key, period_start, period_end, prediction_count, result_summary)
			VALUES ($1, $2, '', $3, $4, 20, jsonb_build_object('value', $5::double precision))`,
			"SNP_"+id, id, periodEnd.Add(-time.Hour), periodEnd, value)
		require.NoError(t, err)
	}
	testfactory.RefreshLeaderboard(ctx, t, pool, nil)
}

func TestTopModels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	seedLeaderboard(ctx, t, pool, map[string]float64{"m-a": 0.1, "m-b": 0.5, "m-c": 0.3, "m-d": 0.9, "m-e": 0.2})
	server := serve(t, pool, "testdata/api", customsql.Options{})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		resp := get(t, server.URL+"/custom/top_models?limit=3")
		require.Equal(t, "false", resp.header.Get(customsql.HeaderTruncated))
		require.Equal(t, "1000", resp.header.Get(customsql.HeaderRowLimit))
		require.Equal(t, []map[string]any{
			{"model_id": "m-d", "model_name": "name-m-d", "cruncher_name": "cruncher-m-d", "rank": float64(1), "ranking_value": 0.9},
			{"model_id": "m-b", "model_name": "name-m-b", "cruncher_name": "cruncher-m-b", "rank": float64(2), "ranking_value": 0.5},
			{"model_id": "m-c", "model_name": "name-m-c", "cruncher_name": "cruncher-m-c", "rank": float64(3), "ranking_value": 0.3},
		}, resp.rows(t))
		// Keys come in the query's column order, not sorted.
		require.Regexp(t, `^\[\{"model_id":"m-d","model_name":"name-m-d","cruncher_name":"cruncher-m-d","rank":1,"ranking_value":0\.9\},`, string(resp.body))
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		t.Parallel()
		require.Len(t, get(t, server.URL+"/custom/top_models").rows(t), 5)
	})

	t.Run("OneModel", func(t *testing.T) {
		t.Parallel()
		rows := get(t, server.URL+"/custom/top_models?model_id=m-c&projectIds=x,y").rows(t)
		require.Len(t, rows, 1)
		require.Equal(t, "m-c", rows[0]["model_id"])
	})

	t.Run("NoMatchIsEmptyArray", func(t *testing.T) {
		t.Parallel()
		resp := get(t, server.URL+"/custom/top_models?model_id=nobody")
		require.Equal(t, "[]", string(resp.body))
	})

	t.Run("BadValue", func(t *testing.T) {
		t.Parallel()
		detail := get(t, server.URL+"/custom/top_models?limit=many").problem(t, http.StatusUnprocessableEntity)
		require.Equal(t, `parameter "limit": "many" is not a 64-bit integer`, detail)
	})

	t.Run("DataExceptionFromValue", func(t *testing.T) {
		t.Parallel()
		detail := get(t, server.URL+"/custom/top_models?limit=-1").problem(t, http.StatusUnprocessableEntity)
		require.Equal(t, `custom endpoint "top_models": LIMIT must not be negative (SQLSTATE 2201W)`, detail)
	})

	t.Run("UnknownEndpoint", func(t *testing.T) {
		t.Parallel()
		detail := get(t, server.URL+"/custom/bottom_models").problem(t, http.StatusNotFound)
		require.Equal(t, `no custom endpoint "bottom_models"`, detail)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		resp := get(t, server.URL+"/custom/")
		require.Equal(t, http.StatusOK, resp.status)
		require.Equal(t, string(resp.body), string(get(t, server.URL+"/custom").body))
		require.JSONEq(t, `[{
			"name": "top_models",
			"path": "/custom/top_models",
			"description": "The ranked models of the leaderboard, best first, or the row of one model.",
			"params": [
				{"name": "limit", "type": "int", "default": "10"},
				{"name": "model_id", "type": "text", "default": null}
			]
		}]`, string(resp.body))
	})

	t.Run("OnlyGet", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Post(server.URL+"/custom/top_models", "application/json", nil)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
	})
}

func TestValues(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	server := serve(t, pool, endpointsDir(t, map[string]string{
		"types": `SELECT 7::int2 AS small, 42::int AS i, 9007199254740993::bigint AS big, 1.5::float4 AS f4,
			'NaN'::float8 AS nan, 12.50::numeric AS dec, 123456789012345678901234567890::numeric AS huge,
			0.0001::numeric AS tiny, -5e3::numeric AS neg, 'NaN'::numeric AS dec_nan,
			'2026-03-20 12:00:00.123456+02'::timestamptz AS ts, '2026-03-20 12:00:00'::timestamp AS naive,
			'infinity'::timestamptz AS forever, '2026-03-20'::date AS day,
			'{"a": [1, 2.5], "big": 12345678901234567890}'::jsonb AS doc, '{"x" : 1}'::json AS raw_json,
			'\x0102ff'::bytea AS bytes, true AS yes, NULL::text AS nothing,
			'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, interval '1 day 02:00:00' AS span,
			ARRAY[1, 2] AS ints, ARRAY['a', NULL] AS texts, '10.0.0.1/8'::inet AS net,
			1 AS dup, 2 AS dup`,
		"params": "-- param: b bool\n-- param: f float = 0.25\n-- param: i int\n-- param: t text = 'x y'\n-- param: at timestamptz\n" +
			"SELECT @b AS b, @f AS f, @i AS i, @t AS t, @at AS at, pg_typeof(@i)::text AS i_type",
	}), customsql.Options{})

	t.Run("Types", func(t *testing.T) {
		t.Parallel()
		resp := get(t, server.URL+"/custom/types")
		require.Equal(t, http.StatusOK, resp.status, string(resp.body))
		require.Equal(t, `[{"small":7,"i":42,"big":9007199254740993,"f4":1.5,"nan":null,"dec":12.50,`+
			`"huge":123456789012345678901234567890,"tiny":0.0001,"neg":-5000,"dec_nan":null,`+
			`"ts":"2026-03-20T10:00:00.123456Z","naive":"2026-03-20T12:00:00Z","forever":"infinity","day":"2026-03-20",`+
			`"doc":{"a":[1,2.5],"big":12345678901234567890},"raw_json":{"x":1},"bytes":"AQL/","yes":true,"nothing":null,`+
			`"id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","span":"1 day 02:00:00","ints":[1,2],"texts":["a",null],`+
			`"net":"10.0.0.1/8","dup":1,"dup_2":2}]`, string(resp.body))
	})

	t.Run("ParamsNullAndDefaults", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, []map[string]any{
			{"b": nil, "f": 0.25, "i": nil, "t": "x y", "at": nil, "i_type": "bigint"},
		}, get(t, server.URL+"/custom/params").rows(t))
	})

	t.Run("ParamsGiven", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, []map[string]any{
			{"b": true, "f": -1.5, "i": float64(12), "t": "", "at": "2026-03-20T10:00:00Z", "i_type": "bigint"},
		}, get(t, server.URL+"/custom/params?b=true&f=-1.5&i=12&t=&at=2026-03-20T12:00:00%2B02:00").rows(t))
	})
}

// TestReadOnly is the guarantee the package exists for: whatever a file says, it cannot
// change the database. The writes are refused by Postgres, not recognised by us.
func TestReadOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	testfactory.Model(ctx, t, pool, &testfactory.ModelOpts{ID: testfactory.Ptr("keep")})
	server := serve(t, pool, endpointsDir(t, map[string]string{
		"create":     "CREATE TABLE evil (id int)",
		"cte_delete": "WITH gone AS (DELETE FROM models RETURNING id) SELECT * FROM gone",
		"drop":       "DROP TABLE models CASCADE",
		"insert":     "INSERT INTO models (id, name) VALUES ('evil', 'evil') RETURNING id",
		"nextval":    "SELECT nextval(pg_get_serial_sequence('scheduled_prediction_configs', 'id'))",
		"read_write": "SELECT set_config('transaction_read_only', 'off', true)",
		"update":     "UPDATE models SET name = 'evil'",
	}), customsql.Options{})

	tests := []struct {
		name    string
		refusal string
	}{
		{name: "create", refusal: "cannot execute CREATE TABLE in a read-only transaction"},
		{name: "cte_delete", refusal: "cannot execute SELECT in a read-only transaction"},
		{name: "drop", refusal: "cannot execute DROP TABLE in a read-only transaction"},
		{name: "insert", refusal: "cannot execute INSERT in a read-only transaction"},
		{name: "nextval", refusal: "cannot execute nextval() in a read-only transaction"},
		// Switching the transaction to read-write inside the query comes too late.
		{name: "read_write", refusal: "transaction read-write mode must be set before any query"},
		{name: "update", refusal: "cannot execute UPDATE in a read-only transaction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			detail := get(t, server.URL+"/custom/"+tt.name).problem(t, http.StatusInternalServerError)
			require.Contains(t, detail, fmt.Sprintf("custom endpoint %q", tt.name))
			require.Contains(t, detail, tt.refusal)
		})
	}

	t.Run("NothingChanged", func(t *testing.T) {
		t.Parallel()
		// Runs alongside the writers above; none of them may have had an effect at any
		// point, so this holds whatever the order.
		var names []string
		rows, err := pool.Query(ctx, "SELECT name FROM models")
		require.NoError(t, err)
		for rows.Next() {
			var name string
			require.NoError(t, rows.Scan(&name))
			names = append(names, name)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []string{"name-keep"}, names)
		var evil bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('evil') IS NOT NULL").Scan(&evil))
		require.False(t, evil)
	})
}

func TestLimits(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	dir := endpointsDir(t, map[string]string{
		"series": "-- param: n int\nSELECT g FROM generate_series(1, @n) AS g",
		"sleep":  "-- param: s float\nSELECT pg_sleep(@s) AS slept",
	})
	server := serve(t, pool, dir, customsql.Options{MaxRows: 5, StatementTimeout: 200 * time.Millisecond})

	t.Run("AtCap", func(t *testing.T) {
		t.Parallel()
		resp := get(t, server.URL+"/custom/series?n=5")
		require.Len(t, resp.rows(t), 5)
		require.Equal(t, "false", resp.header.Get(customsql.HeaderTruncated))
		require.Equal(t, "5", resp.header.Get(customsql.HeaderRowLimit))
	})

	t.Run("OverCap", func(t *testing.T) {
		t.Parallel()
		resp := get(t, server.URL+"/custom/series?n=100000")
		rows := resp.rows(t)
		require.Len(t, rows, 5)
		require.Equal(t, float64(5), rows[4]["g"])
		require.Equal(t, "true", resp.header.Get(customsql.HeaderTruncated))
	})

	t.Run("StatementTimeout", func(t *testing.T) {
		t.Parallel()
		detail := get(t, server.URL+"/custom/sleep?s=30").problem(t, http.StatusServiceUnavailable)
		require.Equal(t, `custom endpoint "sleep" ran longer than its 200ms statement timeout`, detail)
	})

	t.Run("WithinTimeout", func(t *testing.T) {
		t.Parallel()
		require.Len(t, get(t, server.URL+"/custom/sleep?s=0").rows(t), 1)
	})

	t.Run("PoolStillUsable", func(t *testing.T) {
		t.Parallel()
		// The timeout is SET LOCAL: a connection that served a timed-out request goes back
		// to the pool without it.
		for range 3 {
			get(t, server.URL+"/custom/sleep?s=30").problem(t, http.StatusServiceUnavailable)
		}
		var timeout string
		require.NoError(t, pool.QueryRow(context.Background(), "SELECT current_setting('statement_timeout')").Scan(&timeout))
		require.Equal(t, "0", timeout)
	})
}

func TestRunDirect(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	set, errs := customsql.Load(endpointsDir(t, map[string]string{
		"one": "-- param: x int = 1\nSELECT @x + 1 AS y, 'a' AS y",
	}))
	require.Empty(t, errs)
	endpoint, ok := set.Lookup("one")
	require.True(t, ok)

	result, err := endpoint.Run(context.Background(), pool, map[string][]string{"x": {"41"}}, customsql.Options{})
	require.NoError(t, err)
	require.Equal(t, []string{"y", "y_2"}, result.Columns)
	require.Equal(t, []map[string]any{{"y": int64(42), "y_2": "a"}}, result.Maps())
	require.False(t, result.Truncated)

	_, err = endpoint.Run(context.Background(), pool, map[string][]string{"x": {"x"}}, customsql.Options{})
	var paramErr *customsql.ParamError
	require.ErrorAs(t, err, &paramErr)
	require.Equal(t, "x", paramErr.Name)
}

func TestOperations(t *testing.T) {
	t.Parallel()
	set, errs := customsql.Load("testdata/api")
	require.Empty(t, errs)
	ops := set.Operations(customsql.Options{})
	require.Len(t, ops, 1)
	op := ops[0]
	require.Equal(t, "custom-top_models", op.OperationID)
	require.Equal(t, http.MethodGet, op.Method)
	require.Equal(t, "/custom/top_models", op.Path)
	require.Equal(t, "The ranked models of the leaderboard, best first, or the row of one model.", op.Summary)
	require.Equal(t, []string{"Custom"}, op.Tags)
	require.Len(t, op.Parameters, 2)
	require.Equal(t, "limit", op.Parameters[0].Name)
	require.Equal(t, "query", op.Parameters[0].In)
	require.Equal(t, "integer", op.Parameters[0].Schema.Type)
	require.Equal(t, int64(10), op.Parameters[0].Schema.Default)
	require.Equal(t, "model_id", op.Parameters[1].Name)
	require.Equal(t, "string", op.Parameters[1].Schema.Type)
	require.Nil(t, op.Parameters[1].Schema.Default)
	for _, status := range []string{"200", "404", "422", "500", "503"} {
		require.Contains(t, op.Responses, status)
	}
}
