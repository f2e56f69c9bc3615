package feed

import (
	"slices"
	"time"
)

// Kinds of records the built-in providers produce. Kind is a free string in
// storage (other sources may add their own), but these are the ones the
// normalizers understand.
const (
	KindCandle = "candle"
	KindTick   = "tick"
)

// Record is one observation from a feed. Source, Subject, Kind, Granularity and
// TsEvent form its natural key, which is why they come first rather than in
// alphabetical order.
type Record struct {
	Source      string
	Subject     string
	Kind        string
	Granularity string
	// TsEvent is the event time in UTC: the open time of a candle, or the
	// publish (or observation) time of a tick.
	TsEvent time.Time
	// Values holds the numeric payload, {open, high, low, close, volume} for
	// candles and {price, ...} for ticks. Every provider we have is numeric, so
	// keeping it typed spares each consumer a type switch.
	Values map[string]float64
	// Meta holds provider detail that is not a value (close time, trade count,
	// feed id, ...). It is stored as JSON.
	Meta map[string]any
}

// Subject describes something a provider can be asked about. It mirrors the
// Python engine's SubjectDescriptor so the report API can list it unchanged.
type Subject struct {
	DisplayName   string
	Granularities []string
	Kinds         []string
	Meta          map[string]any
	Source        string
	Symbol        string
}

// Skip reasons reported in [SkipReason.Reason]. They are stable strings so the
// job layer can use them as metric labels.
const (
	SkipDuplicate        = "duplicate"
	SkipFuture           = "future"
	SkipInconsistent     = "inconsistent"
	SkipMalformed        = "malformed"
	SkipNoHistory        = "no_history"
	SkipNonFinite        = "non_finite"
	SkipNonPositive      = "non_positive"
	SkipNotClosed        = "not_closed"
	SkipOutOfOrder       = "out_of_order"
	SkipOutOfRange       = "out_of_range"
	SkipUnexpectedSymbol = "unexpected_symbol"
)

// SkipReason says why one row of a provider response was not turned into a
// record. Dropping bad rows instead of failing the page keeps one garbage row
// from blocking everything after it, while the reason keeps the drop visible.
type SkipReason struct {
	// Detail is a short human-readable explanation.
	Detail string
	// Index is the row's position in the response, or -1 when the skip is
	// about the page as a whole.
	Index int
	// Reason is one of the Skip* constants.
	Reason string
	// TsEvent is the row's time when it could be read, else zero.
	TsEvent time.Time
}

// Page is one page of a [Provider.Fetch] answer.
type Page struct {
	// More reports that the provider has, or may have, records after this page
	// within the requested range.
	More bool
	// Next is where the next page should start when More is set. It may be
	// later than the last record plus one step when the provider skipped a gap
	// (a window of history with no bars), so an empty page with More set is a
	// gap, not the end.
	Next time.Time
	// Records are ascending by TsEvent with no duplicate times.
	Records []Record
	// Skipped lists the rows that were dropped and why.
	Skipped []SkipReason
}

// SkipCounts counts the page's skipped rows by reason, ready for logging.
func (p Page) SkipCounts() map[string]int {
	counts := make(map[string]int, len(p.Skipped))
	for _, s := range p.Skipped {
		counts[s.Reason]++
	}
	return counts
}

// SortRecords sorts records ascending by TsEvent, then by the rest of the
// natural key, so outputs are deterministic.
func SortRecords(records []Record) {
	slices.SortStableFunc(records, compareRecords)
}

func compareRecords(a, b Record) int {
	if c := a.TsEvent.Compare(b.TsEvent); c != 0 {
		return c
	}
	for _, pair := range [][2]string{
		{a.Source, b.Source},
		{a.Subject, b.Subject},
		{a.Kind, b.Kind},
		{a.Granularity, b.Granularity},
	} {
		if pair[0] != pair[1] {
			if pair[0] < pair[1] {
				return -1
			}
			return 1
		}
	}
	return 0
}
