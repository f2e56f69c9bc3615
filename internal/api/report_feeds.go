package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// feedCountCap is how many records of a scope /reports/feeds counts exactly. Counting all
// of them would scan the whole scope on every poll of the Feeds page (every 5 s; 30 days
// of 1 s candles are 2.6 million rows per scope), so above the cap the count is estimated
// from the density of the newest feedCountCap records over the scope's span. That is exact
// for gap-free candles and close for any regular feed, at the cost of a bounded index-only
// scan per scope.
const feedCountCap = 20_000

// FeedRow is one /reports/feeds entry. Times carry a Z: the Feeds page parses them with
// Date.parse, which reads a zone-less time as browser-local.
type FeedRow struct {
	Granularity        string     `json:"granularity"`
	Kind               string     `json:"kind"`
	NewestTS           *time.Time `json:"newest_ts"`
	OldestTS           *time.Time `json:"oldest_ts"`
	RecordCount        int64      `json:"record_count"         doc:"Records stored for the scope; estimated above 20,000 (see record_count_exact)."`
	RecordCountExact   bool       `json:"record_count_exact"   doc:"False when record_count is an estimate."`
	Source             string     `json:"source"`
	Subject            string     `json:"subject"`
	WatermarkTS        *time.Time `json:"watermark_ts"         doc:"The newest event the feed has ingested."`
	WatermarkUpdatedAt *time.Time `json:"watermark_updated_at"`
}

// FeedRecordRow is one /reports/feeds/tail record; values is the record's payload.
type FeedRecordRow struct {
	Granularity string     `json:"granularity"`
	Kind        string     `json:"kind"`
	Meta        jsonObject `json:"meta"`
	Source      string     `json:"source"`
	Subject     string     `json:"subject"`
	TSEvent     time.Time  `json:"ts_event"`
	TSIngested  time.Time  `json:"ts_ingested"`
	Values      jsonObject `json:"values"`
}

type feedTailInput struct {
	Granularity string `query:"granularity"`
	Kind        string `query:"kind"`
	Limit       int    `query:"limit"   default:"20" minimum:"1" maximum:"200"`
	Source      string `query:"source"`
	Subject     string `query:"subject"`
}

// feedList serves /reports/feeds and its admin twin /reports/backfill/feeds.
func (r *reports) feedList(ctx context.Context, _ *struct{}) (*listOutput[FeedRow], error) {
	rows, err := r.feeds(ctx)
	if err != nil {
		return nil, toHTTPError(ctx, r.deps.Logger, err)
	}
	return &listOutput[FeedRow]{Body: nonNil(rows)}, nil
}

func (r *reports) registerFeeds(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "report-feeds",
		Method:      http.MethodGet,
		Path:        "/reports/feeds",
		Summary:     "Feed scopes",
		Description: "Every feed scope with its record count, oldest and newest record and watermark.",
		Tags:        []string{"Reports"},
	}, r.feedList)

	huma.Register(api, huma.Operation{
		OperationID: "backfill-feeds",
		Method:      http.MethodGet,
		Path:        "/reports/backfill/feeds",
		Summary:     "Feed scopes, for the backfill page",
		Description: "The same rows as /reports/feeds, on the admin tier with the other backfill endpoints.",
		Tags:        []string{"Backfill"},
		Security:    []map[string][]string{{"apiKey": {}}},
	}, r.feedList)

	huma.Register(api, huma.Operation{
		OperationID: "report-feeds-tail",
		Method:      http.MethodGet,
		Path:        "/reports/feeds/tail",
		Summary:     "Newest feed records",
		Description: "The newest records first; each scope parameter is optional.",
		Tags:        []string{"Reports"},
	}, func(ctx context.Context, in *feedTailInput) (*listOutput[FeedRecordRow], error) {
		optional := func(s string) *string {
			if s == "" {
				return nil
			}
			return &s
		}
		records, err := dbsqlc.New().FeedRecordListTail(ctx, r.deps.Pool, &dbsqlc.FeedRecordListTailParams{
			Granularity: optional(in.Granularity),
			Kind:        optional(in.Kind),
			MaxRows:     int32(in.Limit),
			Source:      optional(in.Source),
			Subject:     optional(in.Subject),
		})
		if err != nil {
			return nil, toHTTPError(ctx, r.deps.Logger, fmt.Errorf("listing feed records: %w", err))
		}
		rows := make([]FeedRecordRow, 0, len(records))
		for _, rec := range records {
			rows = append(rows, FeedRecordRow{
				Granularity: rec.Granularity,
				Kind:        rec.Kind,
				Meta:        jsonObject(rec.Meta),
				Source:      rec.Source,
				Subject:     rec.Subject,
				TSEvent:     *utcPtr(&rec.TSEvent),
				TSIngested:  *utcPtr(&rec.TSIngested),
				Values:      jsonObject(rec.Payload),
			})
		}
		return &listOutput[FeedRecordRow]{Body: rows}, nil
	})
}

func (r *reports) feeds(ctx context.Context) ([]FeedRow, error) {
	queries := dbsqlc.New()
	scopes, err := queries.FeedScopeListForReport(ctx, r.deps.Pool)
	if err != nil {
		return nil, fmt.Errorf("listing feeds: %w", err)
	}
	rows := make([]FeedRow, 0, len(scopes))
	for _, scope := range scopes {
		stats, err := queries.FeedScopeStatsGet(ctx, r.deps.Pool, &dbsqlc.FeedScopeStatsGetParams{
			CountCap:    feedCountCap,
			Granularity: scope.Granularity,
			Kind:        scope.Kind,
			Source:      scope.Source,
			Subject:     scope.Subject,
		})
		if err != nil {
			return nil, fmt.Errorf("reading feed %s/%s/%s/%s: %w", scope.Source, scope.Subject, scope.Kind, scope.Granularity, err)
		}
		row := FeedRow{
			Granularity:        scope.Granularity,
			Kind:               scope.Kind,
			Source:             scope.Source,
			Subject:            scope.Subject,
			WatermarkTS:        utcPtr(scope.WatermarkTS),
			WatermarkUpdatedAt: utcPtr(scope.WatermarkUpdatedAt),
		}
		row.RecordCount, row.RecordCountExact = feedRecordCount(stats, feedCountCap)
		if stats.HasRecords {
			row.OldestTS, row.NewestTS = utcPtr(&stats.OldestTS), utcPtr(&stats.NewestTS)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// feedRecordCount is the exact count when the scope has fewer records than the cap, and
// otherwise the newest records' density extrapolated over the scope's whole span (never
// less than what was counted).
func feedRecordCount(f *dbsqlc.FeedScopeStatsGetRow, limit int64) (int64, bool) {
	if !f.HasRecords || f.Counted < limit {
		return f.Counted, true
	}
	recent := f.NewestTS.Sub(f.CapTS)
	span := f.NewestTS.Sub(f.OldestTS)
	if recent <= 0 || span <= recent {
		return f.Counted, span <= recent
	}
	estimate := int64(math.Round(float64(f.Counted-1)*float64(span)/float64(recent))) + 1
	return max(estimate, f.Counted), false
}
