package modelhost

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// maxHistory bounds the closes kept per symbol; the examples look back at
// most a few candles.
const maxHistory = 64

// ExampleNames lists the built-in example models, sorted.
func ExampleNames() []string {
	return []string{"constant", "contrarian", "mean-reversion", "momentum"}
}

// ExampleOptions tunes the example models.
type ExampleOptions struct {
	// ConstantValue is what the constant model predicts, a recognisable flag
	// value so its rows stand out in a leaderboard.
	ConstantValue float64
}

// ExampleFactory returns the factory of a built-in example model. Every
// example implements feed_update(data) (and tick(data), which delegates to
// it, for older games) and predict(subject, resolve_horizon_seconds,
// step_seconds) returning {"value": float}.
func ExampleFactory(name string, opts ExampleOptions) (Factory, error) {
	var signal func(closes []float64) float64
	switch name {
	case "constant":
		c := opts.ConstantValue
		signal = func([]float64) float64 { return c }
	case "contrarian":
		signal = func(closes []float64) float64 { return scaled(-momentum(closes), closes) }
	case "mean-reversion":
		signal = func(closes []float64) float64 { return scaled(meanReversion(closes), closes) }
	case "momentum":
		signal = func(closes []float64) float64 { return scaled(momentum(closes), closes) }
	default:
		return nil, fmt.Errorf("unknown example model %q (known: %s)", name, strings.Join(ExampleNames(), ", "))
	}
	return func([]any, map[string]any) (Model, error) {
		m := &exampleModel{signal: signal, series: map[string][]point{}}
		m.feedUpdateMethod = Method{Args: decodeFeedArgs, Func: m.feedUpdate}
		m.predictMethod = Method{Func: m.predict}
		return m, nil
	}, nil
}

// momentum is the relative change over the last five candles (or over what
// history there is).
func momentum(closes []float64) float64 {
	if len(closes) < 2 {
		return 0
	}
	back := min(5, len(closes)-1)
	past := closes[len(closes)-1-back]
	if past == 0 {
		return 0
	}
	return (closes[len(closes)-1] - past) / past
}

// meanReversion bets on a return to the mean of the last five closes.
func meanReversion(closes []float64) float64 {
	if len(closes) < 2 {
		return 0
	}
	window := closes[max(0, len(closes)-5):]
	var sum float64
	for _, c := range window {
		sum += c
	}
	mean := sum / float64(len(window))
	if mean == 0 {
		return 0
	}
	return -(closes[len(closes)-1] - mean) / mean
}

// scaled expresses a raw relative move in units of the recent volatility of five-step
// moves and squashes it into (-1, 1), so the examples' signals are comparable across
// assets and granularities (a raw one-second return is around 1e-5, which no scorer
// would tell from zero).
func scaled(raw float64, closes []float64) float64 {
	window := closes[max(0, len(closes)-61):]
	if len(window) < 3 {
		return 0
	}
	var sum, sumSq float64
	n := 0
	for i := 1; i < len(window); i++ {
		if window[i-1] == 0 {
			continue
		}
		r := (window[i] - window[i-1]) / window[i-1]
		sum += r
		sumSq += r * r
		n++
	}
	if n < 2 {
		return 0
	}
	mean := sum / float64(n)
	variance := sumSq/float64(n) - mean*mean
	if variance <= 0 {
		return 0
	}
	return math.Tanh(raw / (math.Sqrt(variance) * math.Sqrt(5)))
}

type point struct {
	close float64
	ts    timestamp
}

// timestamp is a row's ts as sent: a number, a string, or anything else
// (missing, null, a list…), which merge treats alike, as newer than
// everything. A struct instead of an interface holding a float64 or string
// spares an allocation per row.
type timestamp struct {
	num  float64
	str  string
	kind tsKind
}

type tsKind uint8

const (
	tsOther tsKind = iota
	tsNumber
	tsString
)

func numberTS(f float64) timestamp { return timestamp{num: f, kind: tsNumber} }

func stringTS(s string) timestamp { return timestamp{str: s, kind: tsString} }

// tsOf reads a generically decoded ts.
func tsOf(v any) timestamp {
	switch v := v.(type) {
	case float64:
		return numberTS(v)
	case string:
		return stringTS(v)
	}
	return timestamp{}
}

type exampleModel struct {
	mu     sync.Mutex
	series map[string][]point
	signal func(closes []float64) float64

	// Made once: a method value (m.predict) costs an allocation each time
	// it is taken, and Method is looked up on every call.
	feedUpdateMethod Method
	predictMethod    Method
}

func (m *exampleModel) Method(name string) (Method, bool) {
	switch name {
	case "feed_update", "tick":
		return m.feedUpdateMethod, true
	case "predict":
		return m.predictMethod, true
	}
	return Method{}, false
}

// feedInput is a feed_update argument read by scanFeed.
type feedInput struct {
	points []point
	symbol string
}

// feedInputs recycles the feed_update arguments scanFeed reads: a
// 120-candle window's points take 5 KB, and feedUpdate copies them into the
// model's history, so they are free again once it returns. A recycled
// input's points may still hold the strings of old ts until they are
// overwritten, and the pool drops them at the next garbage collections.
var feedInputs = sync.Pool{New: func() any { return new(feedInput) }}

// decodeFeedArgs reads feed_update's JSON argument with scanFeed, which costs
// a fraction of decoding it into maps: it is the largest message of a tick
// and every model reads it. Whatever scanFeed leaves (Python's NaN, escapes…)
// takes the generic path. The *feedInput it returns is for one feedUpdate,
// which recycles it.
func decodeFeedArgs(args []*mrpb.Argument) ([]any, error) {
	if len(args) == 1 && args[0].GetData().GetType() == mrpb.VariantType_JSON {
		in := feedInputs.Get().(*feedInput)
		if symbol, points, ok := scanFeed(args[0].GetData().GetValue(), in.points[:0]); ok {
			in.symbol, in.points = symbol, points
			return []any{in}, nil
		}
		feedInputs.Put(in)
	}
	return variant.DecodeArgs(args)
}

// feedUpdate merges the candles or ticks of a feed_update into the
// per-symbol history. Candles repeat across ticks, so points are keyed by ts:
// a known ts is replaced, an older one ignored.
func (m *exampleModel) feedUpdate(_ context.Context, args []any, _ map[string]any) (any, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("feed_update takes 1 argument, got %d", len(args))
	}
	var symbol string
	var incoming []point
	switch data := args[0].(type) {
	case *feedInput:
		symbol, incoming = data.symbol, data.points
		defer recycle(data) // after the merge has copied the points
	case map[string]any:
		symbol, incoming = feedFromMap(data)
	default:
		return nil, fmt.Errorf("feed_update wants a JSON object, got %T", args[0])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.series[symbol]
	if ordered(s) && ordered(incoming) && (len(s) == 0 || len(incoming) == 0 || sameKind(s[0].ts, incoming[0].ts)) {
		s = mergeOrdered(s, incoming)
	} else {
		for _, p := range incoming {
			s = merge(s, p)
		}
	}
	if len(s) > maxHistory {
		s = append(s[:0], s[len(s)-maxHistory:]...) // in place: the next tick grows it again
	}
	m.series[symbol] = s
	return nil, nil
}

func recycle(in *feedInput) {
	in.symbol = ""
	feedInputs.Put(in)
}

// feedFromMap reads a generically decoded feed_update argument: the symbol
// (or subject), then the candles' closes and the ticks' prices.
func feedFromMap(data map[string]any) (symbol string, incoming []point) {
	name, _ := data["symbol"].(string)
	subject, _ := data["subject"].(string)
	return cmp.Or(name, subject), append(points(data["candles_1m"], "close"), points(data["ticks"], "price")...)
}

// points reads generically decoded rows: those that are objects with a
// number in field.
func points(v any, field string) []point {
	rows, _ := v.([]any)
	out := make([]point, 0, len(rows))
	for _, r := range rows {
		row, ok := r.(map[string]any)
		if !ok {
			continue
		}
		c, ok := row[field].(float64)
		if !ok {
			continue
		}
		out = append(out, point{close: c, ts: tsOf(row["ts"])})
	}
	return out
}

func merge(s []point, p point) []point {
	if len(s) == 0 {
		return append(s, p)
	}
	switch cmpTS(p.ts, s[len(s)-1].ts) {
	case 0:
		s[len(s)-1] = p
		return s
	case 1:
		return append(s, p)
	}
	for i := range s { // an older or unordered point: replace if known
		if cmpTS(p.ts, s[i].ts) == 0 {
			s[i] = p
		}
	}
	return s
}

// ordered reports whether the points' timestamps are all numbers or all
// strings, in non-decreasing order. A history built by merge from such points
// is strictly increasing.
func ordered(s []point) bool {
	for i := range s {
		if s[i].ts.kind == tsOther {
			return false
		}
		if i > 0 && (!sameKind(s[i-1].ts, s[i].ts) || cmpTS(s[i-1].ts, s[i].ts) > 0) {
			return false
		}
	}
	return true
}

func sameKind(a, b timestamp) bool {
	return a.kind == b.kind && a.kind != tsOther
}

// mergeOrdered is merge applied to each point of incoming in turn, for an
// ordered history and ordered incoming points of the same kind: one pass over
// both instead of a scan of the history for every older point (a tick sends
// the whole window, almost all of it already known).
func mergeOrdered(s, incoming []point) []point {
	return mergeOrderedFrom(s, incoming[olderThanHistory(s, incoming):])
}

// olderThanHistory counts the numbers that start incoming and are older than
// both ends of the history s: mergeOrderedFrom passes them (they are neither
// newer nor known), and two comparisons each cost a sixth of its search (a
// window is often longer than the history). A NaN is neither older nor
// newer than anything, so it ends the count.
func olderThanHistory(s, incoming []point) int {
	if len(s) == 0 || s[0].ts.kind != tsNumber || s[len(s)-1].ts.kind != tsNumber {
		return 0
	}
	first, last := s[0].ts.num, s[len(s)-1].ts.num
	n := 0
	for n < len(incoming) && incoming[n].ts.kind == tsNumber && incoming[n].ts.num < first && incoming[n].ts.num < last {
		n++
	}
	return n
}

func mergeOrderedFrom(s, incoming []point) []point {
	i := 0 // where the next older point may be found in s
	for _, p := range incoming {
		if len(s) == 0 {
			s = append(s, p)
			continue
		}
		switch cmpTS(p.ts, s[len(s)-1].ts) {
		case 0:
			s[len(s)-1] = p
			continue
		case 1:
			s = append(s, p)
			continue
		}
		for ; i < len(s); i++ { // one comparison of each point passed
			if c := cmpTS(s[i].ts, p.ts); c >= 0 {
				if c == 0 {
					s[i] = p
				}
				break
			}
		}
	}
	return s
}

// cmpTS compares timestamps of the same kind; mixed or missing kinds count as
// newer so data is never silently dropped. It is small enough to inline
// (strings.Compare is not), as the merges call it for every point.
func cmpTS(a, b timestamp) int {
	if a.kind != b.kind || a.kind == tsOther {
		return 1
	}
	less, more := a.num < b.num, a.num > b.num
	if a.kind == tsString {
		less, more = a.str < b.str, a.str > b.str
	}
	switch {
	case less:
		return -1
	case more:
		return 1
	}
	return 0
}

func (m *exampleModel) predict(_ context.Context, args []any, _ map[string]any) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("predict needs at least the subject argument")
	}
	subject, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("predict subject must be a string, got %T", args[0])
	}
	m.mu.Lock()
	s := m.lookup(subject)
	closes := make([]float64, len(s))
	for i, p := range s {
		closes[i] = p.close
	}
	m.mu.Unlock()
	return prediction{Value: m.signal(closes)}, nil
}

// prediction is predict's answer, {"value": float}; a struct encodes to the
// same JSON as the map would, without sorting keys.
type prediction struct {
	Value float64 `json:"value"`
}

// lookup finds a subject's history: exact name, then a symbol starting with
// it (subject "BTC" for feed symbol "BTCUSDT"), then the only symbol known.
func (m *exampleModel) lookup(subject string) []point {
	if s, ok := m.series[subject]; ok {
		return s
	}
	for sym, s := range m.series {
		if subject != "" && strings.HasPrefix(strings.ToUpper(sym), strings.ToUpper(subject)) {
			return s
		}
	}
	if len(m.series) == 1 {
		for _, s := range m.series {
			return s
		}
	}
	return nil
}

// rawJSON passes a document through the Variant encoder untouched.
func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

func oversized(n int) json.RawMessage {
	var b strings.Builder
	b.Grow(n + 32)
	b.WriteString(`{"value": 0.1, "pad": "`)
	b.WriteString(strings.Repeat("x", n))
	b.WriteString(`"}`)
	return json.RawMessage(b.String())
}
