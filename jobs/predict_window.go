package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/feed"
)

// windowCache remembers, per feed scope, the last full input window a tick read. Its
// oldest record bounds the next read: unbounded below, the newest-records query plans and
// opens every daily partition of feed_records (98 at the default 90-day retention, about
// a millisecond a tick), bounded only the few that can hold the window. Its decoded
// values serve the records that come back unchanged: consecutive windows share all but
// their newest records, and decoding 120 payloads costs a quarter of a millisecond.
type windowCache struct {
	mu      sync.Mutex
	windows map[windowKey]*cachedWindow
}

type windowKey struct {
	maxRows int32
	scope   FeedScope
}

type cachedWindow struct {
	oldest time.Time
	// records maps a record's ts_event (Unix nanoseconds) to its payload and values.
	records map[int64]cachedRecord
}

type cachedRecord struct {
	payload json.RawMessage
	values  map[string]float64
}

// inputWindow reads a tick's input window: the newest maxRows records of a scope, oldest
// first, exactly as FeedRecordListNewest without a lower bound returns them. The values
// of a record read unchanged by an earlier tick are that tick's map: input builders only
// read them.
//
// The bound only makes the read cheaper, never different: when the bounded read returns
// maxRows records, no record it left out can be newer than any it returned (records are
// unique per timestamp), so they are the newest maxRows of all. Records are only added or
// replaced (retention drops whole days far older than a window), so the last window's
// records are all still there and the next read finds its maxRows; when it does not, the
// window is read again without the bound.
func (d *Deps) inputWindow(ctx context.Context, db dbsqlc.DBTX, scope FeedScope, maxRows int32) ([]feed.Record, error) {
	queries := dbsqlc.New()
	params := dbsqlc.FeedRecordListNewestParams{
		Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity, MaxRows: maxRows,
	}
	key := windowKey{maxRows: maxRows, scope: scope}
	c := &d.windows
	c.mu.Lock()
	last := c.windows[key]
	c.mu.Unlock()
	if last != nil {
		bounded := params
		bounded.Since = &last.oldest
		records, err := queries.FeedRecordListNewest(ctx, db, &bounded)
		if err != nil {
			return nil, err
		}
		if len(records) == int(maxRows) {
			return c.decode(key, last, records), nil
		}
	}
	records, err := queries.FeedRecordListNewest(ctx, db, &params)
	if err != nil {
		return nil, err
	}
	return c.decode(key, last, records), nil
}

// decode turns the rows (newest first) into the window (oldest first), reusing the values
// of last's unchanged records, and remembers the window if it is full.
func (c *windowCache) decode(key windowKey, last *cachedWindow, rows []*dbsqlc.FeedRecordListNewestRow) []feed.Record {
	window := make([]feed.Record, len(rows))
	next := &cachedWindow{records: make(map[int64]cachedRecord, len(rows))}
	scope := key.scope // the rows are the scope's: the query returns only ts and payload
	for i, r := range rows {
		ts := r.TSEvent.UnixNano()
		cached, ok := cachedRecord{}, false
		if last != nil {
			cached, ok = last.records[ts]
		}
		if !ok || !bytes.Equal(cached.payload, r.Payload) {
			cached = cachedRecord{payload: r.Payload, values: map[string]float64{}}
			_ = json.Unmarshal(r.Payload, &cached.values)
		}
		next.records[ts] = cached
		window[len(rows)-1-i] = feed.Record{
			Source: scope.Source, Subject: scope.Subject, Kind: scope.Kind, Granularity: scope.Granularity, TsEvent: r.TSEvent, Values: cached.values,
		}
	}
	if len(rows) == 0 || len(rows) != int(key.maxRows) {
		return window
	}
	next.oldest = rows[len(rows)-1].TSEvent
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.windows == nil {
		c.windows = map[windowKey]*cachedWindow{}
	}
	c.windows[key] = next
	return window
}
