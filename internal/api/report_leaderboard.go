package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// unrankedRank is the rank the Python engine gave entries without one; the UI sorts and
// shows it as is, so it is kept rather than null.
const unrankedRank = 999999

// leaderboardCacheTTL is how long a cached leaderboard is served before the database is
// asked whether a newer one exists. The leaderboard changes at most every scoring cycle
// (debounced to 500 ms by the refresh job), so a reader sees a refresh within a second
// while the database sees at most two cheap queries a second however many clients poll.
const leaderboardCacheTTL = 500 * time.Millisecond

// LeaderboardRow is one /reports/leaderboard entry: the Python engine's shape, with every
// metric also flattened to the top level so that leaderboard columns and gauges can read
// `row[property]` (see /reports/schema).
type LeaderboardRow struct {
	_            struct{}       `json:"-" additionalProperties:"true"`
	CreatedAt    *time.Time     `json:"created_at"    doc:"When the leaderboard was computed; null before the first refresh."`
	CruncherName string         `json:"cruncher_name"`
	ModelID      string         `json:"model_id"`
	ModelName    string         `json:"model_name"`
	Rank         int            `json:"rank"          doc:"1 is best; 999999 for entries that are not ranked (ensembles, too few predictions, no ranking value)."`
	ScoreMetrics jsonObject     `json:"score_metrics" doc:"Window values and the numeric fields of the latest snapshot."`
	ScoreRanking ScoreRanking   `json:"score_ranking"`
	Flat         map[string]any `json:"-"`
}

// MarshalJSON adds the flattened metrics (numbers, or null where a value is not numeric).
func (r LeaderboardRow) MarshalJSON() ([]byte, error) {
	type plain LeaderboardRow
	return marshalFlat(plain(r), r.Flat)
}

// ScoreRanking says which metric ranks the leaderboard and this entry's value of it.
type ScoreRanking struct {
	Direction string   `json:"direction" enum:"asc,desc"`
	Key       string   `json:"key"`
	Value     *float64 `json:"value"`
}

type leaderboardInput struct {
	AcceptEncoding   string `header:"Accept-Encoding"`
	IncludeEnsembles bool   `query:"include_ensembles" doc:"Include ensembles (virtual models), hidden by default."`
}

type leaderboardOutput struct {
	Body            []byte
	ContentEncoding string `header:"Content-Encoding"`
	// ContentLength spares net/http the chunked encoding it uses for bodies written
	// without a known length.
	ContentLength int    `header:"Content-Length"`
	ContentType   string `header:"Content-Type"`
	Vary          string `header:"Vary"`
}

func (r *reports) registerLeaderboard(api huma.API) {
	registry := api.OpenAPI().Components.Schemas
	huma.Register(api, huma.Operation{
		OperationID: "report-leaderboard",
		Method:      http.MethodGet,
		Path:        "/reports/leaderboard",
		Summary:     "Leaderboard",
		Description: "The current leaderboard sorted by rank. Served from memory and refreshed from the " +
			"database within about a second of a new leaderboard; gzip when the client accepts it.",
		Tags: []string{"Reports"},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "Leaderboard rows sorted by rank.",
				Content: map[string]*huma.MediaType{"application/json": {
					Schema: registry.Schema(reflect.TypeFor[[]LeaderboardRow](), true, "LeaderboardRows"),
				}},
			},
		},
	}, func(ctx context.Context, in *leaderboardInput) (*leaderboardOutput, error) {
		body, err := r.leaderboard.get(ctx, in.IncludeEnsembles)
		if err != nil {
			return nil, toHTTPError(ctx, r.deps.Logger, err)
		}
		out := &leaderboardOutput{Body: body.plain, ContentType: "application/json", Vary: "Accept-Encoding"}
		if acceptsGzip(in.AcceptEncoding) {
			out.Body, out.ContentEncoding = body.gzip, "gzip"
		}
		out.ContentLength = len(out.Body)
		return out, nil
	})
}

// acceptsGzip reads Accept-Encoding loosely: gzip listed and not refused with q=0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// leaderboardCache serves /reports/leaderboard from memory: both variants (with and
// without ensembles) encoded once, plain and gzipped. A request that finds the copy older
// than ttl asks the database for the newest leaderboards id and reloads the leaderboard
// only when it changed. Only one request refreshes at a time; the others keep serving the
// previous copy meanwhile, so the hot path is an atomic load and never waits on the
// database (except the very first requests, which have nothing to serve yet).
type leaderboardCache struct {
	db     dbsqlc.DBTX
	logger *slog.Logger
	now    func() time.Time
	ttl    time.Duration

	refreshing sync.Mutex
	state      atomic.Pointer[leaderboardState]
}

type leaderboardState struct {
	checked time.Time
	version int64
	bodies  [2]leaderboardBody // [0] without ensembles, [1] with
}

type leaderboardBody struct {
	gzip  []byte
	plain []byte
}

func newLeaderboardCache(db dbsqlc.DBTX, logger *slog.Logger, now func() time.Time, ttl time.Duration) *leaderboardCache {
	return &leaderboardCache{db: db, logger: logger, now: now, ttl: ttl}
}

func (c *leaderboardCache) get(ctx context.Context, includeEnsembles bool) (*leaderboardBody, error) {
	variant := 0
	if includeEnsembles {
		variant = 1
	}
	current := c.state.Load()
	if current != nil && c.now().Sub(current.checked) < c.ttl {
		return &current.bodies[variant], nil
	}
	if current == nil {
		c.refreshing.Lock()
	} else if !c.refreshing.TryLock() {
		return &current.bodies[variant], nil // another request is refreshing
	}
	defer c.refreshing.Unlock()
	if current = c.state.Load(); current != nil && c.now().Sub(current.checked) < c.ttl {
		return &current.bodies[variant], nil
	}
	// The refresh serves every waiting request, so one client hanging up must not abort it.
	loadCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	next, err := c.load(loadCtx, current)
	if err != nil {
		if current == nil {
			return nil, err
		}
		c.logger.WarnContext(ctx, "Leaderboard cache: refresh failed; serving the previous leaderboard",
			slog.String("error", err.Error()))
		retry := *current
		retry.checked = c.now()
		c.state.Store(&retry)
		return &current.bodies[variant], nil
	}
	c.state.Store(next)
	return &next.bodies[variant], nil
}

// load reloads the leaderboard if its version changed since previous.
func (c *leaderboardCache) load(ctx context.Context, previous *leaderboardState) (*leaderboardState, error) {
	queries := dbsqlc.New()
	checked := c.now()
	latest, err := queries.LeaderboardLatestGet(ctx, c.db)
	if err != nil {
		return nil, fmt.Errorf("reading the leaderboard version: %w", err)
	}
	if previous != nil && previous.version == latest.ID {
		next := *previous
		next.checked = checked
		return &next, nil
	}
	rows, err := queries.LeaderboardList(ctx, c.db, true)
	if err != nil {
		return nil, fmt.Errorf("listing the leaderboard: %w", err)
	}
	var createdAt *time.Time
	if latest.ID != 0 {
		createdAt = utcPtr(&latest.CreatedAt)
	}
	next := &leaderboardState{checked: checked, version: latest.ID}
	for variant, includeVirtual := range []bool{false, true} {
		plain, err := encodeLeaderboard(rows, createdAt, includeVirtual)
		if err != nil {
			return nil, err
		}
		compressed, err := gzipBytes(plain)
		if err != nil {
			return nil, err
		}
		next.bodies[variant] = leaderboardBody{gzip: compressed, plain: plain}
	}
	return next, nil
}

// encodeLeaderboard builds the response body. The leaderboard's order (rank, which a
// LEADERBOARD_RANKER may have set; unranked last) is the response order, which the UI
// keeps.
func encodeLeaderboard(rows []*dbsqlc.LeaderboardListRow, createdAt *time.Time, includeVirtual bool) ([]byte, error) {
	out := make([]LeaderboardRow, 0, len(rows))
	for _, row := range rows {
		if row.Virtual && !includeVirtual {
			continue
		}
		metrics, err := decodeObject(row.Metrics)
		if err != nil {
			return nil, fmt.Errorf("leaderboard metrics of %s: %w", row.ModelID, err)
		}
		flat := make(map[string]any, len(metrics))
		for k, v := range metrics {
			flat[k] = metricValue(v)
		}
		rank := int(row.Rank)
		if rank <= 0 {
			rank = unrankedRank
		}
		// A model without a ranking value (no snapshot in the ranking window) shows null,
		// not a 0 that reads like a real score.
		var value *float64
		if row.HasRankingValue {
			v := row.RankingValue
			value = &v
		}
		out = append(out, LeaderboardRow{
			CreatedAt:    createdAt,
			CruncherName: row.CruncherName,
			ModelID:      row.ModelID,
			ModelName:    row.ModelName,
			Rank:         rank,
			ScoreMetrics: jsonObject(row.Metrics),
			ScoreRanking: ScoreRanking{Direction: row.RankingDirection, Key: row.RankingKey, Value: value},
			Flat:         flat,
		})
	}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding the leaderboard: %w", err)
	}
	return body, nil
}

func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	return buf.Bytes(), nil
}
