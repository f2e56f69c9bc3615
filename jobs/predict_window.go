package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
)

// windowBounds remembers, per feed scope, the oldest record of the last full input window
// a tick read. Unbounded below, the newest-records query plans and opens every daily
// partition of feed_records (98 at the default 90-day retention, about a millisecond a
// tick); bounded by this, only the few that can hold the window.
type windowBounds struct {
	mu     sync.Mutex
	oldest map[windowKey]time.Time
}

type windowKey struct {
	maxRows int32
	scope   FeedScope
}

// newestRecords reads a tick's input window: the newest p.MaxRows records of a scope,
// newest first, exactly as FeedRecordListNewest without a lower bound returns them.
//
// The bound only makes the read cheaper, never different: when the bounded read returns
// p.MaxRows records, no record it left out can be newer than any it returned (records
// are unique per timestamp), so they are the newest p.MaxRows of all. Records are only
// added or replaced (retention drops whole days far older than a window), so the last
// window's records are all still there and the next read finds its p.MaxRows; when it
// does not, the window is read again without the bound.
func (d *Deps) newestRecords(ctx context.Context, db dbsqlc.DBTX, p dbsqlc.FeedRecordListNewestParams) ([]*dbsqlc.FeedRecord, error) {
	queries := dbsqlc.New()
	if p.Before != nil || p.Since != nil || p.MaxRows <= 0 {
		return queries.FeedRecordListNewest(ctx, db, &p)
	}
	key := windowKey{maxRows: p.MaxRows, scope: FeedScope{Granularity: p.Granularity, Kind: p.Kind, Source: p.Source, Subject: p.Subject}}
	b := &d.windows
	b.mu.Lock()
	since, ok := b.oldest[key]
	b.mu.Unlock()
	if ok {
		bounded := p
		bounded.Since = &since
		records, err := queries.FeedRecordListNewest(ctx, db, &bounded)
		if err != nil {
			return nil, err
		}
		if len(records) == int(p.MaxRows) {
			b.remember(key, records)
			return records, nil
		}
	}
	records, err := queries.FeedRecordListNewest(ctx, db, &p)
	if err != nil {
		return nil, err
	}
	b.remember(key, records)
	return records, nil
}

// remember keeps the oldest record of a full window, the next read's bound.
func (b *windowBounds) remember(key windowKey, records []*dbsqlc.FeedRecord) {
	if len(records) != int(key.maxRows) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.oldest == nil {
		b.oldest = map[windowKey]time.Time{}
	}
	b.oldest[key] = records[len(records)-1].TSEvent
}
