package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/dbtest"
	"github.com/crunchnode/crunch-node/internal/emission"
	"github.com/crunchnode/crunch-node/internal/testfactory"
	"github.com/crunchnode/crunch-node/jobs"
)

// The UI contract test replays what the CrunchDAO coordinator web UI (the starter app)
// requests, in its order, and checks the fields it reads
// (reference/report-api-contract.md §2–§5): the leaderboard page, the navbar and feeds
// page, then the metrics page's one request per CHART widget of /reports/schema with
// projectIds, start and end as the browser sends them.

// uiSchema is /reports/schema as the UI's Next server reads it.
type uiSchema struct {
	LeaderboardColumns []uiColumn `json:"leaderboard_columns"`
	MetricsWidgets     []uiWidget `json:"metrics_widgets"`
}

type uiColumn struct {
	Property string `json:"property"`
	Type     string `json:"type"`
}

type uiWidget struct {
	EndpointURL         string `json:"endpointUrl"`
	NativeConfiguration struct {
		AlertConfig *struct {
			Field       string `json:"field"`
			ReasonField string `json:"reasonField"`
		} `json:"alertConfig"`
		FilterConfig []struct {
			Property string `json:"property"`
		} `json:"filterConfig"`
		GroupByProperty string `json:"groupByProperty"`
		Type            string `json:"type"`
		XAxis           struct {
			Name string `json:"name"`
		} `json:"xAxis"`
		YAxis struct {
			Series []struct {
				Name string `json:"name"`
			} `json:"series"`
		} `json:"yAxis"`
	} `json:"nativeConfiguration"`
	ProjectIDProperty string `json:"projectIdProperty"`
	Type              string `json:"type"`
}

// uiReplay is what one replay of the UI's requests received.
type uiReplay struct {
	feeds       []map[string]any
	leaderboard []map[string]any
	models      []map[string]any
	schema      uiSchema
	tail        []map[string]any
	// widgets maps a CHART widget's endpointUrl to its rows.
	widgets map[string][]map[string]any
}

// jsISOString formats t as JavaScript's Date.prototype.toISOString does.
func jsISOString(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// uiGet GETs a UI request, requires 200 and a JSON array (never null), and returns the raw
// body and its rows.
func uiGet(t *testing.T, base, path string) ([]byte, []map[string]any) {
	t.Helper()
	status, _, body := fetch(t, base+path, nil)
	require.Equal(t, http.StatusOK, status, "GET %s: %s", path, body)
	require.True(t, bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")), "GET %s answers a JSON array, not %s", path, body)
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(body, &rows), "GET %s", path)
	require.NotNil(t, rows, "GET %s", path)
	return body, rows
}

// replayUI issues the UI's requests in its order and checks what holds for any data: lists
// are arrays, record_count is a number, feed times carry Z, chart x values of line widgets
// are naive, chart rows carry model_id, and an unknown parameter changes nothing.
func replayUI(t *testing.T, base string, now time.Time) *uiReplay {
	t.Helper()
	out := &uiReplay{widgets: map[string][]map[string]any{}}

	// The Next server fetches the schema for the columns and widgets files.
	status, _, body := fetch(t, base+"/reports/schema", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &raw))
	for _, key := range []string{"leaderboard_columns", "metrics_widgets"} {
		require.True(t, bytes.HasPrefix(raw[key], []byte("[")), "/reports/schema %s is an array: %s", key, raw[key])
	}
	require.NoError(t, json.Unmarshal(body, &out.schema))
	require.NotEmpty(t, out.schema.LeaderboardColumns)
	require.NotEmpty(t, out.schema.MetricsWidgets)

	// Leaderboard page: the rows, then the models they are joined with on model_id.
	_, out.leaderboard = uiGet(t, base, "/reports/leaderboard")
	previous := 0.0
	for _, row := range out.leaderboard {
		require.IsType(t, "", row["model_id"], "leaderboard rows carry model_id: %v", row)
		rank, ok := row["rank"].(float64)
		require.True(t, ok, "rank is a number: %v", row)
		require.GreaterOrEqual(t, rank, previous, "rows are sorted by rank")
		previous = rank
	}
	_, out.models = uiGet(t, base, "/reports/models")
	for _, m := range out.models {
		for _, key := range []string{"model_id", "model_name", "cruncher_name"} {
			require.IsType(t, "", m[key], "/reports/models %s is a string: %v", key, m)
		}
	}

	// The navbar on every page, then the Feeds page and the tail of its selected feed.
	_, out.feeds = uiGet(t, base, "/reports/feeds")
	for _, feed := range out.feeds {
		require.IsType(t, 0.0, feed["record_count"], "record_count is a JSON number: %v", feed)
		require.Regexp(t, zonedPattern, feed["watermark_ts"], "watermark_ts carries Z: %v", feed)
		for _, key := range []string{"oldest_ts", "newest_ts", "watermark_updated_at"} {
			if feed[key] != nil {
				require.Regexp(t, zonedPattern, feed[key], "%s carries Z: %v", key, feed)
			}
		}
		for _, key := range []string{"source", "subject", "kind", "granularity"} {
			require.IsType(t, "", feed[key], "feed %s: %v", key, feed)
		}
	}
	tailScope := url.Values{"source": {"synthetic"}, "subject": {"BTCUSDT"}, "kind": {"candle"}, "granularity": {"1m"}}
	if len(out.feeds) > 0 {
		first := out.feeds[0]
		for key := range tailScope {
			tailScope.Set(key, first[key].(string))
		}
	}
	tailScope.Set("limit", "20")
	_, out.tail = uiGet(t, base, "/reports/feeds/tail?"+tailScope.Encode())
	for _, rec := range out.tail {
		require.Regexp(t, zonedPattern, rec["ts_event"])
		require.Regexp(t, zonedPattern, rec["ts_ingested"])
		require.IsType(t, map[string]any{}, rec["values"])
		require.IsType(t, map[string]any{}, rec["meta"])
		require.Equal(t, tailScope.Get("subject"), rec["subject"])
	}

	// Metrics page: one request per CHART widget, for every model of /reports/models, over
	// the last 30 days. (With no models the UI sends none; they are sent anyway, without
	// projectIds, to check the empty answers.)
	modelIDs := ids(out.models)
	for _, w := range out.schema.MetricsWidgets {
		if w.Type != "CHART" {
			continue
		}
		// A subtest each (sequential, in the UI's order), so one broken endpoint does not
		// hide what the others answer.
		t.Run("Request"+w.EndpointURL, func(t *testing.T) {
			requestWidget(t, base, w, modelIDs, now, out)
		})
	}
	return out
}

// requestWidget requests one CHART widget's endpoint as the metrics page does and checks
// its rows.
func requestWidget(t *testing.T, base string, w uiWidget, modelIDs []string, now time.Time, out *uiReplay) {
	t.Helper()
	query := "?projectIds=" + url.QueryEscape(strings.Join(modelIDs, ",")) +
		"&start=" + url.QueryEscape(jsISOString(now.Add(-30*24*time.Hour))) +
		"&end=" + url.QueryEscape(jsISOString(now))
	plain, rows := uiGet(t, base, w.EndpointURL+query)
	withUnknown, _ := uiGet(t, base, w.EndpointURL+query+"&_ts=123")
	require.Equal(t, string(plain), string(withUnknown), "%s ignores an unknown parameter", w.EndpointURL)

	cfg := w.NativeConfiguration
	idProperty := cmpOr(w.ProjectIDProperty, "model_id")
	for _, row := range rows {
		id, ok := row[idProperty].(string)
		require.True(t, ok, "%s rows carry %s: %v", w.EndpointURL, idProperty, row)
		if len(modelIDs) > 0 {
			require.Contains(t, modelIDs, id, "%s answers for the selected models only", w.EndpointURL)
		}
		if cfg.Type == "line" {
			require.Regexp(t, naivePattern, row[cfg.XAxis.Name],
				"%s: %s is a naive ISO time (the line chart appends Z)", w.EndpointURL, cfg.XAxis.Name)
		} else {
			require.Contains(t, row, cfg.XAxis.Name, "%s: the bar chart's x field", w.EndpointURL)
		}
		for _, s := range cfg.YAxis.Series {
			if v, present := row[s.Name]; present && v != nil {
				require.IsType(t, 0.0, v, "%s: series %s is a number", w.EndpointURL, s.Name)
			}
		}
	}
	out.widgets[w.EndpointURL] = rows
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// contractFixture builds what a node that has run for a while holds: feed records and
// watermarks, models (one of them an ensemble, one new and never scored, one stale),
// predictions in every state, scores, snapshots, a refreshed leaderboard with history and
// a checkpoint.
func contractFixture(t *testing.T, now time.Time) (*fixture, []string) {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, dbtest.NewPool(t))
	queries := dbsqlc.New()

	candles := now.Add(-time.Hour).Truncate(time.Minute)
	testfactory.FeedCandles(ctx, t, f.pool, [4]string{"synthetic", "BTCUSDT", "candle", "1m"}, candles, time.Minute, []float64{100, 101, 99, 102, 103})
	testfactory.FeedCandles(ctx, t, f.pool, [4]string{"synthetic", "ETHUSDT", "candle", "1m"}, candles, time.Minute, []float64{10, 11})
	for subject, last := range map[string]time.Time{"BTCUSDT": candles.Add(4 * time.Minute), "ETHUSDT": candles.Add(time.Minute)} {
		_, err := queries.FeedStateAdvance(ctx, f.pool, &dbsqlc.FeedStateAdvanceParams{
			Granularity: "1m", Kind: "candle", LastEventTS: &last, Meta: json.RawMessage(`{}`), Source: "synthetic", Subject: subject,
		})
		require.NoError(t, err)
	}

	for _, m := range []struct {
		id      string
		virtual bool
	}{{"alpha", false}, {"beta", false}, {"delta", false}, {"ensemble", true}, {"gamma", false}, {"stale", false}} {
		f.model(t, m.id, m.virtual)
	}
	// SCORED predictions (f.score stores the score and recomputes the snapshot; the score
	// job also marks the prediction SCORED).
	for _, s := range []struct {
		id     string
		age    time.Duration
		value  float64
		reason string
	}{
		{"alpha", 30 * time.Hour, 1, ""},
		{"alpha", 2 * time.Hour, 100, "ground truth missing"},
		{"alpha", time.Hour, 3, ""},
		{"beta", 2 * time.Hour, 2, ""},
		{"ensemble", time.Hour, 5, ""},
		{"gamma", 3 * time.Hour, 1, ""},
		{"stale", 5 * 24 * time.Hour, 4, ""},
	} {
		f.score(t, s.id, now.Add(-s.age), result(s.value), s.reason)
	}
	_, err := f.pool.Exec(ctx, `UPDATE predictions p SET status = 'SCORED' FROM scores s WHERE s.prediction_id = p.id AND s.slot_at = p.slot_at`)
	require.NoError(t, err)
	// PENDING, FAILED and ABSENT predictions.
	f.predict(t, "alpha", now.Add(-10*time.Minute))
	f.predict(t, "delta", now.Add(-10*time.Minute))
	for _, p := range []struct {
		id, status, reason string
	}{{"beta", "FAILED", "timeout after 500ms"}, {"gamma", "ABSENT", ""}} {
		id, slot := f.predict(t, p.id, now.Add(-20*time.Minute))
		_, err := queries.PredictionMarkMany(ctx, f.pool, &dbsqlc.PredictionMarkManyParams{
			IDs: []string{id}, Reasons: []string{p.reason}, Slots: []time.Time{slot}, Statuses: []string{p.status},
		})
		require.NoError(t, err)
	}
	f.refresh(t)

	// A checkpoint over the real models, as the checkpoint job stores it.
	ranked := []string{"alpha", "beta", "gamma"}
	var ranking []jobs.RankedModel
	var entries []emission.Entry
	for i, id := range ranked {
		ranking = append(ranking, jobs.RankedModel{
			CruncherName: "cruncher-" + id, ModelID: id, ModelName: "name-" + id, PredictionCount: 3, Rank: i + 1,
			ResultSummary: map[string]any{"value": float64(len(ranked) - i), "ic": 0.1},
		})
		entries = append(entries, emission.Entry{ModelID: id})
	}
	doc, err := emission.Build(emission.StrategyTiers, entries, emission.Identities{Crunch: "crunch-key"})
	require.NoError(t, err)
	entriesJSON, err := json.Marshal([]emission.Checkpoint{doc})
	require.NoError(t, err)
	meta, err := json.Marshal(map[string]any{"ranking": ranking, "model_count": len(ranked)})
	require.NoError(t, err)
	root := strings.Repeat("ab", 32)
	start := now.Add(-26 * time.Hour).Truncate(time.Hour)
	_, err = queries.CheckpointInsert(ctx, f.pool, &dbsqlc.CheckpointInsertParams{
		Entries: entriesJSON, ID: "CKP_contract", MerkleRoot: &root, Meta: meta, PeriodStart: start, PeriodEnd: start.Add(24 * time.Hour),
	})
	require.NoError(t, err)
	return f, []string{"alpha", "beta", "delta", "gamma", "stale"}
}

func TestContractUIReplay(t *testing.T) {
	t.Parallel()

	t.Run("EmptyDatabase", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t, dbtest.NewPool(t), nil)
		got := replayUI(t, bundle.server.URL, time.Now().UTC())
		require.Empty(t, got.leaderboard)
		require.Empty(t, got.models)
		require.Empty(t, got.feeds)
		require.Empty(t, got.tail)
		for endpoint, rows := range got.widgets {
			require.Empty(t, rows, endpoint)
		}
		_, rows := uiGet(t, bundle.server.URL, "/reports/leaderboard?include_ensembles=true")
		require.Empty(t, rows)
	})

	t.Run("WithData", func(t *testing.T) {
		t.Parallel()
		now := time.Now().UTC()
		f, realModels := contractFixture(t, now)
		bundle := setup(t, f.pool, nil)
		base := bundle.server.URL
		got := replayUI(t, base, now)

		t.Run("Models", func(t *testing.T) {
			t.Parallel()
			require.Equal(t, realModels, ids(got.models), "ensembles are hidden")
		})

		t.Run("Feeds", func(t *testing.T) {
			t.Parallel()
			require.Len(t, got.feeds, 2)
			require.Equal(t, "BTCUSDT", got.feeds[0]["subject"])
			require.Equal(t, 5.0, got.feeds[0]["record_count"])
			require.Len(t, got.tail, 5, "the tail of the first feed")
		})

		t.Run("LeaderboardEnsembles", func(t *testing.T) {
			t.Parallel()
			lb := ids(got.leaderboard)
			require.NotContains(t, lb, "ensemble", "ensembles are hidden by default")
			require.Subset(t, realModels, lb, "every row joins a /reports/models entry")
			require.Equal(t, "alpha", lb[0], "the best recent score ranks first")
			_, with := uiGet(t, base, "/reports/leaderboard?include_ensembles=true")
			require.Contains(t, ids(with), "ensemble")
			require.Len(t, with, len(got.leaderboard)+1)
			previous := 0.0
			for _, row := range with {
				require.GreaterOrEqual(t, row["rank"].(float64), previous, "sorted by rank with ensembles too")
				previous = row["rank"].(float64)
			}
		})

		t.Run("LeaderboardUnknownParameter", func(t *testing.T) {
			t.Parallel()
			plain, _ := uiGet(t, base, "/reports/leaderboard")
			withUnknown, _ := uiGet(t, base, "/reports/leaderboard?_ts=123")
			require.Equal(t, string(plain), string(withUnknown))
		})

		t.Run("LeaderboardColumnsAreRowKeys", func(t *testing.T) {
			t.Parallel()
			require.NotEmpty(t, got.leaderboard)
			for _, row := range got.leaderboard {
				for _, column := range got.schema.LeaderboardColumns {
					if column.Type == "MODEL" {
						continue
					}
					require.Contains(t, row, column.Property, "leaderboard row %v lacks column %q", row["model_id"], column.Property)
				}
			}
		})

		for _, w := range got.schema.MetricsWidgets {
			if w.Type != "CHART" {
				continue
			}
			t.Run("Widget"+w.EndpointURL, func(t *testing.T) {
				t.Parallel()
				rows, requested := got.widgets[w.EndpointURL]
				require.True(t, requested, "the replay got no answer from %s (see its Request subtest)", w.EndpointURL)
				require.NotEmpty(t, rows, "the fixture gives every widget something to draw")
				keys := map[string]bool{}
				for _, row := range rows {
					for k := range row {
						keys[k] = true
					}
				}
				cfg := w.NativeConfiguration
				for _, s := range cfg.YAxis.Series {
					require.True(t, keys[s.Name], "series %q is a key of some row", s.Name)
				}
				var perRow []string
				if cfg.GroupByProperty != "" {
					perRow = append(perRow, cfg.GroupByProperty)
				}
				for _, filter := range cfg.FilterConfig {
					perRow = append(perRow, filter.Property)
				}
				if cfg.AlertConfig != nil {
					perRow = append(perRow, cfg.AlertConfig.Field, cfg.AlertConfig.ReasonField)
				}
				for _, row := range rows {
					for _, key := range perRow {
						require.Contains(t, row, key, "group-by, filter and alert fields are top-level keys")
					}
				}
			})
		}

		t.Run("PredictionStates", func(t *testing.T) {
			t.Parallel()
			rows := got.widgets["/reports/predictions"]
			var statuses []string
			for _, row := range rows {
				if s, _ := row["status"].(string); !slices.Contains(statuses, s) {
					statuses = append(statuses, s)
				}
				if row["scored_at"] != nil {
					require.Regexp(t, naivePattern, row["scored_at"])
				}
				require.IsType(t, true, row["score_success"])
			}
			slices.Sort(statuses)
			require.Equal(t, []string{"ABSENT", "FAILED", "PENDING", "SCORED"}, statuses)
		})
	})
}
