package feed

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Normalizer names accepted by [NormalizerByName]. They are the values of the
// Python engine's feed_normalizer setting.
const (
	NormalizerCandle = "candle"
	NormalizerTick   = "tick"
)

// SymbolMap maps feed subjects to the symbols models know (BTCUSDT → BTC), the
// CrunchConfig feed.subject_mapping. Subjects without an entry keep their name.
type SymbolMap map[string]string

// Symbol returns the model symbol for a feed subject: an exact entry, then a
// case-insensitive one, else the subject itself.
func (m SymbolMap) Symbol(subject string) string {
	if s, ok := m[subject]; ok && s != "" {
		return s
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.EqualFold(k, subject) && m[k] != "" {
			return m[k]
		}
	}
	return subject
}

// Normalizer builds the model input for one subject from its stored records.
// The output is a plain map so it can be sent as JSON or as a model-runner
// Variant without another conversion; times are unix seconds, as the Python
// engine sends them, and lists are never nil.
type Normalizer interface {
	// Name is the registry name.
	Name() string
	// Normalize builds the input. Records of other subjects are ignored, the
	// rest are deduplicated by time (last wins) and sorted, and records that
	// have no usable price are dropped.
	Normalize(subject string, records []Record, symbols SymbolMap) map[string]any
}

// NormalizerByName returns the normalizer called name: candle (the default
// when name is empty) or tick.
func NormalizerByName(name string) (Normalizer, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case NormalizerCandle, "":
		return candleNormalizer{}, nil
	case NormalizerTick:
		return tickNormalizer{}, nil
	}
	return nil, fmt.Errorf("unknown feed normalizer %q, want %s or %s", name, NormalizerCandle, NormalizerTick)
}

// candleNormalizer produces {symbol, asof_ts, candles_1m: [{ts, open, high,
// low, close, volume}]}.
//
// Candle records are passed at their own granularity, as the Python engine
// does (a 1s feed yields 1s candles under the candles_1m key), so existing
// models see what they always saw. Missing open, high and low default to the
// close, missing volume to 0.
//
// When the records hold no candles but do hold ticks, the ticks are
// aggregated into one-minute candles (first, max, min and last price; volume
// from a tick's volume value if it has one, else 0), because that is what the
// key promises and what a candle model can use. The Python engine handed such
// models an empty list instead. The newest minute may be partial: it holds the
// ticks seen so far, which is all a model could know at asof_ts.
type candleNormalizer struct{}

func (candleNormalizer) Name() string { return NormalizerCandle }

func (candleNormalizer) Normalize(subject string, records []Record, symbols SymbolMap) map[string]any {
	candles := usableRecords(subject, records, KindCandle)
	var rows []candleRow
	if len(candles) > 0 {
		rows = make([]candleRow, 0, len(candles))
		for _, r := range candles {
			price, _ := recordPrice(r)
			row := candleRow{ts: r.TsEvent, open: price, high: price, low: price, close: price}
			if v, ok := r.Values["open"]; ok && finite(v) {
				row.open = v
			}
			if v, ok := r.Values["high"]; ok && finite(v) {
				row.high = v
			}
			if v, ok := r.Values["low"]; ok && finite(v) {
				row.low = v
			}
			if v, ok := r.Values["volume"]; ok && finite(v) {
				row.volume = v
			}
			rows = append(rows, row)
		}
	} else {
		rows = ticksToCandles(usableRecords(subject, records, KindTick), time.Minute)
	}

	out := make([]any, 0, len(rows))
	var asof int64
	for _, c := range rows {
		out = append(out, map[string]any{
			"close":  c.close,
			"high":   c.high,
			"low":    c.low,
			"open":   c.open,
			"ts":     c.ts.Unix(),
			"volume": c.volume,
		})
		asof = c.ts.Unix()
	}
	return map[string]any{
		"asof_ts":    asof,
		"candles_1m": out,
		"symbol":     symbols.Symbol(subject),
	}
}

type candleRow struct {
	ts                             time.Time
	open, high, low, close, volume float64
}

// ticksToCandles buckets sorted ticks into candles of width step.
func ticksToCandles(ticks []Record, step time.Duration) []candleRow {
	var rows []candleRow
	for _, r := range ticks {
		price, _ := recordPrice(r)
		vol := 0.0
		if v, ok := r.Values["volume"]; ok && finite(v) && v > 0 {
			vol = v
		}
		bucket := FloorTime(r.TsEvent, step)
		if n := len(rows); n > 0 && rows[n-1].ts.Equal(bucket) {
			c := &rows[n-1]
			c.high = max(c.high, price)
			c.low = min(c.low, price)
			c.close = price
			c.volume += vol
			continue
		}
		rows = append(rows, candleRow{ts: bucket, open: price, high: price, low: price, close: price, volume: vol})
	}
	return rows
}

// tickNormalizer produces {symbol, asof_ts, ticks: [{ts, price}]}.
//
// When the records hold no ticks but do hold candles, each candle becomes a
// tick of its close price stamped at the candle's close time (open time plus
// the granularity), because that is when the close price was known; stamping
// it at the open time would show a model a price from the future.
type tickNormalizer struct{}

func (tickNormalizer) Name() string { return NormalizerTick }

func (tickNormalizer) Normalize(subject string, records []Record, symbols SymbolMap) map[string]any {
	ticks := usableRecords(subject, records, KindTick)
	type tick struct {
		price float64
		ts    time.Time
	}
	var rows []tick
	if len(ticks) > 0 {
		for _, r := range ticks {
			price, _ := recordPrice(r)
			rows = append(rows, tick{price: price, ts: r.TsEvent})
		}
	} else {
		for _, r := range usableRecords(subject, records, KindCandle) {
			price, _ := recordPrice(r)
			ts := r.TsEvent
			if step, err := ParseGranularity(r.Granularity); err == nil {
				ts = ts.Add(step)
			}
			rows = append(rows, tick{price: price, ts: ts})
		}
		slices.SortStableFunc(rows, func(a, b tick) int { return a.ts.Compare(b.ts) })
	}
	out := make([]any, 0, len(rows))
	var asof int64
	for _, t := range rows {
		out = append(out, map[string]any{"price": t.price, "ts": t.ts.Unix()})
		asof = t.ts.Unix()
	}
	return map[string]any{
		"asof_ts": asof,
		"symbol":  symbols.Symbol(subject),
		"ticks":   out,
	}
}

// recordPrice is the record's close, else its price. Candles carry close,
// ticks carry price; either may be stored under the other name by other
// sources.
func recordPrice(r Record) (float64, bool) {
	for _, k := range []string{"close", "price"} {
		if v, ok := r.Values[k]; ok && finite(v) && v > 0 {
			return v, true
		}
	}
	return 0, false
}

// usableRecords returns the subject's records of one kind that have a price,
// ascending by time with duplicates removed (the last one wins, like an
// upsert).
func usableRecords(subject string, records []Record, kind string) []Record {
	var out []Record
	for _, r := range records {
		if r.Kind != kind || (r.Subject != "" && !strings.EqualFold(r.Subject, subject)) {
			continue
		}
		if _, ok := recordPrice(r); !ok {
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Record) int { return a.TsEvent.Compare(b.TsEvent) })
	deduped := out[:0]
	for _, r := range out {
		if n := len(deduped); n > 0 && deduped[n-1].TsEvent.Equal(r.TsEvent) {
			deduped[n-1] = r
			continue
		}
		deduped = append(deduped, r)
	}
	return deduped
}
