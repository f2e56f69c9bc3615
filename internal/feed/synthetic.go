package feed

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

const (
	// synthDefaultSeed is fixed so that two runs without configuration, or a
	// test and the demo, see the same market.
	synthDefaultSeed = 20260101

	// synthMaxLimit caps a page. Generation is cheap, but pages bound the
	// memory a single call holds, like every other provider.
	synthMaxLimit = 5000

	// synthLevels is the depth of the Brownian tree: 2^41 seconds from the
	// Unix epoch reach beyond the year 71000.
	synthLevels = 41

	// secondsPerYear (Julian) converts annual drift and volatility to
	// per-second terms.
	secondsPerYear = 365.25 * 24 * 3600
)

// synthDefaultAnchor is when each subject's price equals its start price.
var synthDefaultAnchor = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Synthetic generates a deterministic market offline: one geometric Brownian
// motion per subject, sampled at whole seconds.
//
// Every value is a pure function of (seed, subject, granularity, bucket time).
// The Brownian path is built as a binary tree of Brownian-bridge midpoints
// over the seconds since the Unix epoch (Lévy's construction), each midpoint
// drawn from a hash of its position, so the price at any second is computed
// directly, without walking from some starting point. Hence fetches in any
// order, overlapping pages and restarts all return identical records, and the
// granularities agree: a 1m candle opens at the 1s price of its first second
// and closes at the 1s price of the next minute's first second. Highs and lows
// are drawn from the exact distribution of a Brownian bridge's maximum and
// minimum between open and close.
//
// Options (FEED_OPT_*): seed (default 20260101), anchor (RFC 3339 time or unix
// seconds at which prices equal their start price, default 2026-01-01),
// drift and volatility (annualised, default 0 and 0.6), start_price (all
// subjects) or start_price_<subject> (default 60000 for BTC-like subjects,
// 3000 for ETH, 150 for SOL, 100 otherwise), notional_per_second (volume
// scale in quote currency, default 20000), subjects (comma list for
// ListSubjects, default BTCUSDT,ETHUSDT).
type Synthetic struct {
	anchor            int64
	drift             float64
	notionalPerSecond float64
	now               func() time.Time
	opts              Options
	seed              uint64
	source            string
	startPrice        float64
	subjects          []string
	volatility        float64
}

var _ Provider = (*Synthetic)(nil)

// NewSynthetic builds the synthetic provider from its options.
func NewSynthetic(cfg Config) (*Synthetic, error) {
	s := &Synthetic{
		anchor:   synthDefaultAnchor.Unix(),
		now:      cfg.now,
		opts:     cfg.Options,
		seed:     synthDefaultSeed,
		source:   cfg.source(ProviderSynthetic),
		subjects: []string{"BTCUSDT", "ETHUSDT"},
	}
	if v := cfg.Options.String("seed", ""); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			// Any string is a usable seed; hash it rather than refuse it.
			h := fnv.New64a()
			h.Write([]byte(v))
			seed = h.Sum64()
		}
		s.seed = seed
	}
	if v := cfg.Options.String("anchor", ""); v != "" {
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			s.anchor = t.Unix()
		} else if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
			s.anchor = sec
		} else {
			return nil, fmt.Errorf("configuring synthetic: option FEED_OPT_anchor=%q: want an RFC 3339 time or unix seconds", v)
		}
		if s.anchor < 0 || s.anchor >= 1<<synthLevels {
			return nil, fmt.Errorf("configuring synthetic: option FEED_OPT_anchor=%q is out of range", v)
		}
	}
	var err error
	if s.drift, err = cfg.Options.Float("drift", 0); err != nil {
		return nil, fmt.Errorf("configuring synthetic: %w", err)
	}
	if s.volatility, err = cfg.Options.Float("volatility", 0.6); err != nil {
		return nil, fmt.Errorf("configuring synthetic: %w", err)
	}
	if s.volatility < 0 || s.volatility > 10 {
		return nil, fmt.Errorf("configuring synthetic: volatility %g is outside [0, 10]", s.volatility)
	}
	if math.Abs(s.drift) > 10 {
		return nil, fmt.Errorf("configuring synthetic: drift %g is outside [-10, 10]", s.drift)
	}
	if s.startPrice, err = cfg.Options.Float("start_price", 0); err != nil {
		return nil, fmt.Errorf("configuring synthetic: %w", err)
	}
	if s.startPrice < 0 {
		return nil, fmt.Errorf("configuring synthetic: start_price %g is negative", s.startPrice)
	}
	if s.notionalPerSecond, err = cfg.Options.Float("notional_per_second", 20000); err != nil {
		return nil, fmt.Errorf("configuring synthetic: %w", err)
	}
	if s.notionalPerSecond < 0 {
		return nil, fmt.Errorf("configuring synthetic: notional_per_second %g is negative", s.notionalPerSecond)
	}
	if v := cfg.Options.String("subjects", ""); v != "" {
		s.subjects = nil
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				s.subjects = append(s.subjects, part)
			}
		}
	}
	for name, v := range cfg.Options.WithPrefix("start_price_") {
		if f, err := strconv.ParseFloat(v, 64); err != nil || !finite(f) || f <= 0 {
			return nil, fmt.Errorf("configuring synthetic: option FEED_OPT_start_price_%s=%q: want a positive number", name, v)
		}
	}
	return s, nil
}

// Name implements [Provider].
func (s *Synthetic) Name() string { return ProviderSynthetic }

// ListSubjects lists the subjects option. Any subject can be fetched; the
// list is what a demo advertises.
func (s *Synthetic) ListSubjects(context.Context) ([]Subject, error) {
	out := make([]Subject, 0, len(s.subjects))
	for _, sub := range s.subjects {
		out = append(out, Subject{
			DisplayName:   sub,
			Granularities: []string{"1s", "1m", "5m", "15m", "1h", "1d"},
			Kinds:         []string{KindCandle, KindTick},
			Meta:          map[string]any{"start_price": s.subjectStart(sub)},
			Source:        s.source,
			Symbol:        sub,
		})
	}
	return out, nil
}

// Fetch implements [Provider]. The range is capped at the last closed bucket as
// of the clock, so a synthetic feed never reveals the future.
func (s *Synthetic) Fetch(ctx context.Context, req FetchRequest) (Page, error) {
	step, err := req.validate()
	if err != nil {
		return Page{}, fmt.Errorf("fetching synthetic %s: %w", req.Subject, err)
	}
	if req.Kind != KindCandle && req.Kind != KindTick {
		return Page{}, fmt.Errorf("fetching synthetic %s: kind %q: %w (want candle or tick)", req.Subject, req.Kind, ErrUnsupported)
	}
	if err := ctx.Err(); err != nil {
		return Page{}, fmt.Errorf("fetching synthetic %s: %w", req.Subject, err)
	}
	limit := req.Limit
	if limit <= 0 || limit > synthMaxLimit {
		limit = synthMaxLimit
	}
	end := s.lastClosed(req.Kind, step)
	if !req.End.IsZero() {
		if e := FloorTime(req.End, step); e.Before(end) {
			end = e
		}
	}
	from := end.Add(-time.Duration(limit-1) * step)
	if !req.Start.IsZero() {
		from = ceilTime(req.Start, step)
	}
	if from.Before(time.Unix(0, 0)) {
		from = time.Unix(0, 0).UTC()
	}
	if from.After(end) {
		return Page{Records: []Record{}}, nil
	}
	to := from.Add(time.Duration(limit-1) * step)
	if to.After(end) {
		to = end
	}
	records := s.generate(req, step, from, to)
	page := Page{Records: records}
	if to.Before(end) {
		page.More = true
		page.Next = to.Add(step)
	}
	return page, nil
}

// Latest implements [Provider]: the last closed candle, or the tick at the
// current bucket's start.
func (s *Synthetic) Latest(ctx context.Context, subject, kind, granularity string) ([]Record, error) {
	step, err := ParseGranularity(granularity)
	if err != nil {
		return nil, fmt.Errorf("fetching latest synthetic %s: %w", subject, err)
	}
	last := s.lastClosed(kind, step)
	page, err := s.Fetch(ctx, FetchRequest{End: last, Granularity: granularity, Kind: kind, Limit: 1, Start: last, Subject: subject})
	if err != nil {
		return nil, err
	}
	return page.Records, nil
}

// lastClosed is the newest bucket whose value is final at the clock's time: a
// candle is final once its bucket has ended, a tick once its instant passed.
func (s *Synthetic) lastClosed(kind string, step time.Duration) time.Time {
	cur := FloorTime(s.now(), step)
	if kind == KindCandle {
		return cur.Add(-step)
	}
	return cur
}

// generate builds the records for buckets from..to (inclusive, aligned).
func (s *Synthetic) generate(req FetchRequest, step time.Duration, from, to time.Time) []Record {
	m := s.model(req.Subject)
	g := int64(step / time.Second)
	n := int(to.Sub(from)/step) + 1
	records := make([]Record, 0, n)
	first := from.Unix()
	for i := range n {
		t := first + int64(i)*g
		rec := Record{
			Source:      s.source,
			Subject:     req.Subject,
			Kind:        req.Kind,
			Granularity: req.Granularity,
			TsEvent:     time.Unix(t, 0).UTC(),
			Meta:        map[string]any{},
		}
		if req.Kind == KindTick {
			rec.Values = map[string]float64{"price": math.Exp(m.logPrice(t))}
		} else {
			rec.Values = m.candle(t, g)
		}
		records = append(records, rec)
	}
	return records
}

// synthModel holds one subject's parameters and a path walker for one call.
// It lives only for the duration of a Fetch, so no state outlives a call.
type synthModel struct {
	anchor            int64
	driftPerSec       float64
	keyHigh           uint64
	keyLow            uint64
	keyVolume         uint64
	logStart          float64
	notionalPerSecond float64
	sigma2PerSec      float64
	sigmaPerSec       float64
	wAnchor           float64
	walk              brownianWalker
}

func (s *Synthetic) model(subject string) *synthModel {
	key := mix64(s.seed ^ mix64(fnv64(strings.ToUpper(strings.TrimSpace(subject)))))
	sigma2 := s.volatility * s.volatility / secondsPerYear
	m := &synthModel{
		anchor:            s.anchor,
		driftPerSec:       (s.drift - s.volatility*s.volatility/2) / secondsPerYear,
		keyHigh:           mix64(key ^ 0x68696768),
		keyLow:            mix64(key ^ 0x6c6f77),
		keyVolume:         mix64(key ^ 0x766f6c),
		logStart:          math.Log(s.subjectStart(subject)),
		notionalPerSecond: s.notionalPerSecond,
		sigma2PerSec:      sigma2,
		sigmaPerSec:       math.Sqrt(sigma2),
		walk:              brownianWalker{key: mix64(key ^ 0x77616c6b)},
	}
	// W(anchor) uses its own walker so the main walker's cache starts at the
	// first requested time.
	anchorWalk := brownianWalker{key: m.walk.key}
	m.wAnchor = anchorWalk.at(uint64(s.anchor))
	return m
}

// logPrice is ln S(t) = ln S0 + (μ − σ²/2)(t − A) + σ (W(t) − W(A)).
func (m *synthModel) logPrice(t int64) float64 {
	w := m.walk.at(uint64(t))
	return m.logStart + m.driftPerSec*float64(t-m.anchor) + m.sigmaPerSec*(w-m.wAnchor)
}

// candle returns the OHLCV of the bucket [t, t+g): open is the price at t,
// close the price at t+g (the next bucket's open), high and low are drawn
// from the distribution of a Brownian bridge's extremes between them.
func (m *synthModel) candle(t, g int64) map[string]float64 {
	lo := m.logPrice(t)
	lc := m.logPrice(t + g)
	x := lc - lo
	v := m.sigma2PerSec * float64(g)
	bucket := uint64(t)
	u1 := uniform(mix64(m.keyHigh^uint64(g)), bucket)
	u2 := uniform(mix64(m.keyLow^uint64(g)), bucket)
	maxUp := (x + math.Sqrt(x*x-2*v*math.Log(u1))) / 2
	maxDown := (x - math.Sqrt(x*x-2*v*math.Log(u2))) / 2
	open, closePrice := math.Exp(lo), math.Exp(lc)
	high := max(open*math.Exp(maxUp), open, closePrice)
	low := min(open*math.Exp(maxDown), open, closePrice)
	z := normal(mix64(m.keyVolume^uint64(g)), bucket)
	volume := m.notionalPerSecond * float64(g) / ((open + closePrice) / 2) * math.Exp(0.5*z-0.125)
	return map[string]float64{"close": closePrice, "high": high, "low": low, "open": open, "volume": volume}
}

// subjectStart is the subject's price at the anchor.
func (s *Synthetic) subjectStart(subject string) float64 {
	for name, v := range s.opts.WithPrefix("start_price_") {
		if strings.EqualFold(name, strings.TrimSpace(subject)) {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
				return f
			}
		}
	}
	if s.startPrice > 0 {
		return s.startPrice
	}
	base := strings.ToUpper(strings.TrimSpace(subject))
	base = strings.TrimPrefix(base, "CRYPTO.")
	base = strings.NewReplacer("/", "", "-", "", "_", "").Replace(base)
	for _, quote := range []string{"USDT", "USDC", "BUSD", "USD", "EUR"} {
		if b, ok := strings.CutSuffix(base, quote); ok && b != "" {
			base = b
			break
		}
	}
	switch base {
	case "BTC", "XBT", "WBTC":
		return 60000
	case "ETH", "WETH":
		return 3000
	case "SOL":
		return 150
	}
	return 100
}

// brownianWalker evaluates a standard Brownian path W at whole seconds in
// [0, 2^41) by descending a binary tree of bridge midpoints: W(0) = 0,
// W(2^41) ~ N(0, 2^41), and the midpoint of a node of length 2^L is the mean
// of its ends plus N(0, 2^L/4), drawn from a hash of (key, L, position). It
// caches the last path, so nearby times (the usual case: consecutive buckets)
// cost only the few levels where they differ. The cache is an optimisation
// only; every result is the same as a fresh walk.
type brownianWalker struct {
	// a, wa and wb hold, per level, the left end of the node on the last
	// path and W at both its ends.
	a     [synthLevels + 1]uint64
	key   uint64
	prev  uint64
	valid bool
	wa    [synthLevels + 1]float64
	wb    [synthLevels + 1]float64
}

// bridgeScale[L] is the standard deviation of a midpoint in a node of length
// 2^L: sqrt(2^L)/2.
var bridgeScale = func() [synthLevels + 1]float64 {
	var s [synthLevels + 1]float64
	for l := range s {
		s[l] = math.Sqrt(math.Ldexp(1, l)) / 2
	}
	return s
}()

// at returns W(n) for 0 <= n < 2^41.
func (w *brownianWalker) at(n uint64) float64 {
	n &= 1<<synthLevels - 1
	level := synthLevels
	var a uint64
	var wa, wb float64
	if w.valid {
		level = bits.Len64(n ^ w.prev)
		a, wa, wb = w.a[level], w.wa[level], w.wb[level]
	} else {
		// The root's far end gets its own stream so it cannot coincide with
		// any midpoint's draw.
		wb = math.Sqrt(math.Ldexp(1, synthLevels)) * normal(mix64(w.key+1), 0)
	}
	for l := level; l > 0; l-- {
		w.a[l], w.wa[l], w.wb[l] = a, wa, wb
		half := uint64(1) << (l - 1)
		mid := (wa+wb)/2 + bridgeScale[l]*normal(w.key, a>>l<<6|uint64(l))
		if n < a+half {
			wb = mid
		} else {
			a, wa = a+half, mid
		}
	}
	w.a[0], w.wa[0], w.wb[0] = a, wa, wb
	w.prev, w.valid = n, true
	return wa
}

// mix64 is the SplitMix64 finaliser: a cheap, well-distributed 64-bit hash.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// uniform returns a number in (0, 1] from (key, index).
func uniform(key, index uint64) float64 {
	h := mix64(key + (index+1)*0x9e3779b97f4a7c15)
	return float64(h>>11+1) / (1 << 53)
}

// normal returns a standard normal number from (key, index) by Box–Muller.
func normal(key, index uint64) float64 {
	u1 := uniform(key, index)
	u2 := uniform(^key, index)
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}
