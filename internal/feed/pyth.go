package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// pythDefaultHermesURL is Pyth's public Hermes host. Since the Core
	// upgrade of 2026-08-26 it wants an API key; set api_key, or point
	// hermes_url at a keyed Hermes-compatible host.
	pythDefaultHermesURL = "https://hermes.pyth.network"

	// pythMaxBars caps one UDF history request, so a long backfill is many
	// bounded requests that each persist progress, not one huge answer.
	pythMaxBars = 1000

	// pythFutureSlack tolerates publish times slightly ahead of our clock:
	// they come from Pyth's clock, and a second of skew is not garbage.
	pythFutureSlack = 5 * time.Second

	// Bounds of Pyth's price exponent; real feeds use -12..0.
	pythMinExpo = -30
	pythMaxExpo = 10
)

// pythBuiltinFeeds are the canonical Hermes feed ids (without 0x, lower case).
// The Python engine's BTC id was wrong; this is the canonical BTC/USD id.
var pythBuiltinFeeds = map[string]string{
	"BTC": "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",
	"ETH": "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace",
}

// pythResolutions maps granularities to TradingView UDF resolutions. 1s has
// none: second-level history is not served in UDF form.
var pythResolutions = map[string]string{
	"1m":  "1",
	"5m":  "5",
	"15m": "15",
	"1h":  "60",
	"1d":  "1D",
}

// Pyth reads Pyth Network prices: Hermes for the latest price (ticks, and
// single-price candles floored to the bucket) and a TradingView UDF history
// endpoint for backfill.
//
// Options (FEED_OPT_*): hermes_url (default https://hermes.pyth.network),
// api_key (sent as Authorization: Bearer to Hermes), history_url (UDF base
// URL; history is off when empty), history_api_key (default api_key),
// feed_id_<SYMBOL>=<hex id> (more feeds), history_symbol_<SYMBOL> (UDF symbol
// override, default Crypto.<SYMBOL>/USD), timeout_seconds (default 10).
type Pyth struct {
	feeds      map[string]pythFeed // by upper-case symbol
	hermes     *httpGetter
	hermesURL  string
	history    *httpGetter
	historyURL string
	now        func() time.Time
	source     string
}

var _ Provider = (*Pyth)(nil)

// pythFeed is one resolvable Pyth feed.
type pythFeed struct {
	historySymbol string
	id            string // lower-case hex, no 0x
	symbol        string // upper case, such as BTC
}

// NewPyth builds a Pyth provider. Malformed feed ids in the options are an
// error at start-up rather than a mysterious empty feed later.
func NewPyth(cfg Config) (*Pyth, error) {
	hermes, err := cfg.getter(ProviderPyth)
	if err != nil {
		return nil, fmt.Errorf("configuring pyth: %w", err)
	}
	history, err := cfg.getter(ProviderPyth)
	if err != nil {
		return nil, fmt.Errorf("configuring pyth: %w", err)
	}
	apiKey := cfg.Options.String("api_key", "")
	if apiKey != "" {
		hermes.authorization = "Bearer " + apiKey
	}
	if k := cfg.Options.String("history_api_key", apiKey); k != "" {
		history.authorization = "Bearer " + k
	}
	hermes.unknown = func(he *HTTPError) bool {
		// Hermes answers 404 "Price ids not found: [...]" for unknown ids; a
		// 404 with another body is a wrong URL, not a wrong subject.
		return he.StatusCode == 404 && strings.Contains(strings.ToLower(he.Body+he.Message), "price id")
	}
	history.unknown = func(he *HTTPError) bool {
		return he.StatusCode == 404 && udfUnknownSymbol(he.Body+" "+he.Message)
	}

	p := &Pyth{
		feeds:      map[string]pythFeed{},
		hermes:     hermes,
		hermesURL:  cfg.Options.String("hermes_url", pythDefaultHermesURL),
		history:    history,
		historyURL: cfg.Options.String("history_url", ""),
		now:        cfg.now,
		source:     cfg.source(ProviderPyth),
	}
	if _, err := url.ParseRequestURI(p.hermesURL); err != nil {
		return nil, fmt.Errorf("configuring pyth: hermes_url %q: %w", p.hermesURL, err)
	}
	if p.historyURL != "" {
		if _, err := url.ParseRequestURI(p.historyURL); err != nil {
			return nil, fmt.Errorf("configuring pyth: history_url %q: %w", p.historyURL, err)
		}
	}
	ids := maps.Clone(pythBuiltinFeeds)
	for name, raw := range cfg.Options.WithPrefix("feed_id_") {
		id, ok := normalizePythID(raw)
		if !ok {
			return nil, fmt.Errorf("configuring pyth: option FEED_OPT_feed_id_%s=%q is not a 32-byte hex feed id", name, raw)
		}
		ids[pythSymbolKey(name)] = id
	}
	// A history symbol follows the feed, not the name it was mapped under:
	// feed_id_BTCUSDT=<BTC/USD id> still has Crypto.BTC/USD history.
	historyByID := map[string]string{}
	for symbol, id := range pythBuiltinFeeds {
		historyByID[id] = "Crypto." + symbol + "/USD"
	}
	overrides := cfg.Options.WithPrefix("history_symbol_")
	for symbol, id := range ids {
		hs, ok := historyByID[id]
		if !ok {
			hs = "Crypto." + pythBase(symbol) + "/USD"
		}
		if o, ok := overrides[strings.ToLower(symbol)]; ok {
			hs = o
		}
		p.feeds[symbol] = pythFeed{historySymbol: hs, id: id, symbol: symbol}
	}
	return p, nil
}

// Name implements [Provider].
func (p *Pyth) Name() string { return ProviderPyth }

// ListSubjects lists the feeds this provider can resolve: the built-in ones and
// those mapped with feed_id_<SYMBOL> options. Hermes' own catalogue has
// thousands of feeds, but only mapped ones can be fetched by subject, so
// listing the catalogue would offer subjects that then fail.
func (p *Pyth) ListSubjects(context.Context) ([]Subject, error) {
	subjects := []Subject{}
	for _, symbol := range slices.Sorted(maps.Keys(p.feeds)) {
		f := p.feeds[symbol]
		subjects = append(subjects, Subject{
			DisplayName:   strings.TrimPrefix(f.historySymbol, "Crypto."),
			Granularities: []string{"1s", "1m", "5m", "15m", "1h", "1d"},
			Kinds:         []string{KindCandle, KindTick},
			Meta:          map[string]any{"feed_id": f.id, "history_symbol": f.historySymbol},
			Source:        p.source,
			Symbol:        symbol,
		})
	}
	return subjects, nil
}

// Fetch implements [Provider]. Candles come from the UDF history endpoint when
// history_url is set and the granularity has a UDF resolution; otherwise, and
// for ticks, Hermes only knows the latest price, so the page holds at most that
// one record and a [SkipNoHistory] entry says when older data was asked for.
func (p *Pyth) Fetch(ctx context.Context, req FetchRequest) (Page, error) {
	step, err := req.validate()
	if err != nil {
		return Page{}, fmt.Errorf("fetching pyth %s: %w", req.Subject, err)
	}
	if req.Kind != KindCandle && req.Kind != KindTick {
		return Page{}, fmt.Errorf("fetching pyth %s: kind %q: %w (want candle or tick)", req.Subject, req.Kind, ErrUnsupported)
	}
	feed, err := p.resolve(req.Subject)
	if err != nil {
		return Page{}, err
	}
	if _, ok := pythResolutions[req.Granularity]; ok && req.Kind == KindCandle && p.historyURL != "" && feed.historySymbol != "" {
		return p.fetchHistory(ctx, req, feed, step)
	}

	rec, err := p.latest(ctx, req, feed, step)
	if err != nil {
		return Page{}, err
	}
	page := Page{}
	// A gap of a whole step or more between the requested start and the only
	// price Hermes has is history we could not serve: say so, once.
	if !req.Start.IsZero() && rec.TsEvent.Sub(req.Start) >= step {
		why := "set FEED_OPT_history_url for history"
		if req.Kind == KindTick {
			why = "tick history is not available"
		} else if _, ok := pythResolutions[req.Granularity]; !ok {
			why = "no UDF history at " + req.Granularity
		}
		page.Skipped = append(page.Skipped, SkipReason{
			Detail: fmt.Sprintf("pyth served only the latest price at %s; data from %s is missing (%s)", rec.TsEvent.Format(time.RFC3339), req.Start.Format(time.RFC3339), why),
			Index:  -1,
			Reason: SkipNoHistory,
		})
	}
	if (!req.Start.IsZero() && rec.TsEvent.Before(req.Start)) || (!req.End.IsZero() && rec.TsEvent.After(req.End)) {
		page.Skipped = append(page.Skipped, SkipReason{
			Detail:  "latest price is outside the requested range",
			Index:   -1,
			Reason:  SkipOutOfRange,
			TsEvent: rec.TsEvent,
		})
		return page, nil
	}
	page.Records = []Record{rec}
	return page, nil
}

// Latest implements [Provider]: the latest Hermes price as a tick, or as a
// single-price candle in the bucket that contains its publish time.
func (p *Pyth) Latest(ctx context.Context, subject, kind, granularity string) ([]Record, error) {
	req := FetchRequest{Granularity: granularity, Kind: kind, Subject: subject}
	step, err := req.validate()
	if err != nil {
		return nil, fmt.Errorf("fetching latest pyth %s: %w", subject, err)
	}
	if kind != KindCandle && kind != KindTick {
		return nil, fmt.Errorf("fetching latest pyth %s: kind %q: %w (want candle or tick)", subject, kind, ErrUnsupported)
	}
	feed, err := p.resolve(subject)
	if err != nil {
		return nil, err
	}
	rec, err := p.latest(ctx, req, feed, step)
	if err != nil {
		return nil, err
	}
	return []Record{rec}, nil
}

func (p *Pyth) latest(ctx context.Context, req FetchRequest, feed pythFeed, step time.Duration) (Record, error) {
	q := url.Values{}
	q.Add("ids[]", feed.id)
	q.Set("parsed", "true")
	body, err := p.hermes.get(ctx, p.hermesURL, "/v2/updates/price/latest", q)
	if err != nil {
		return Record{}, fmt.Errorf("fetching pyth latest price for %s: %w", req.Subject, err)
	}
	prices, skipped, err := parsePythLatest(body, p.now())
	if err != nil {
		return Record{}, fmt.Errorf("fetching pyth latest price for %s: %w", req.Subject, err)
	}
	var found *pythPrice
	for i := range prices {
		if prices[i].id == feed.id {
			found = &prices[i]
		}
	}
	if found == nil {
		detail := "no price for feed id " + feed.id
		for _, s := range skipped {
			detail += "; " + s.Reason + ": " + s.Detail
		}
		return Record{}, fmt.Errorf("fetching pyth latest price for %s: %w", req.Subject, badResponse("%s", detail))
	}
	return found.record(p.source, req, step), nil
}

func (p *Pyth) fetchHistory(ctx context.Context, req FetchRequest, feed pythFeed, step time.Duration) (Page, error) {
	now := p.now()
	limit := req.Limit
	if limit <= 0 || limit > pythMaxBars {
		limit = pythMaxBars
	}
	// The newest bar we may return is the last closed one.
	end := FloorTime(now, step).Add(-step)
	if !req.End.IsZero() {
		if e := FloorTime(req.End, step); e.Before(end) {
			end = e
		}
	}
	from := end.Add(-time.Duration(limit-1) * step)
	if !req.Start.IsZero() {
		from = ceilTime(req.Start, step)
	}
	if from.After(end) {
		return Page{}, nil
	}
	to := from.Add(time.Duration(limit-1) * step)
	if to.After(end) {
		to = end
	}
	q := url.Values{}
	q.Set("symbol", feed.historySymbol)
	q.Set("resolution", pythResolutions[req.Granularity])
	q.Set("from", strconv.FormatInt(from.Unix(), 10))
	q.Set("to", strconv.FormatInt(to.Unix(), 10))
	body, err := p.history.get(ctx, p.historyURL, "/history", q)
	if err != nil {
		return Page{}, fmt.Errorf("fetching pyth history for %s: %w", feed.historySymbol, err)
	}
	res, err := parseUDFHistory(body, udfParams{
		end:         to,
		granularity: req.Granularity,
		kind:        req.Kind,
		now:         now,
		source:      p.source,
		start:       from,
		step:        step,
		subject:     req.Subject,
	})
	if err != nil {
		return Page{}, fmt.Errorf("fetching pyth history for %s: %w", feed.historySymbol, err)
	}
	for i := range res.records {
		res.records[i].Meta["feed_id"] = feed.id
	}
	page := Page{Records: res.records, Skipped: res.skipped}
	// Windows are cut by time, not by rows, so an empty window is a gap in
	// history and the next window is still worth asking for.
	if to.Before(end) {
		page.More = true
		page.Next = to.Add(step)
	}
	return page, nil
}

// resolve maps a subject to a feed. BTC, btc, BTCUSD, BTC/USD, BTC-USD and
// Crypto.BTC/USD all mean the BTC/USD feed; a 64-hex feed id (with or without
// 0x, any case) is accepted as is.
func (p *Pyth) resolve(subject string) (pythFeed, error) {
	if id, ok := normalizePythID(subject); ok {
		// Several names may map to one id; sorted order makes the choice
		// stable (BTC before BTCUSDT).
		for _, symbol := range slices.Sorted(maps.Keys(p.feeds)) {
			if f := p.feeds[symbol]; f.id == id {
				return f, nil
			}
		}
		return pythFeed{id: id, symbol: id}, nil
	}
	key := pythSymbolKey(subject)
	explicitHistory := ""
	if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(subject)), "CRYPTO.") {
		explicitHistory = strings.TrimSpace(subject)
	}
	for _, candidate := range []string{key, pythBase(key)} {
		if f, ok := p.feeds[candidate]; ok {
			if explicitHistory != "" {
				f.historySymbol = explicitHistory
			}
			return f, nil
		}
	}
	known := slices.Sorted(maps.Keys(p.feeds))
	return pythFeed{}, fmt.Errorf("resolving pyth subject %q: %w (known: %s; map more with FEED_OPT_feed_id_<SYMBOL>=<hex id>)",
		subject, ErrUnknownSubject, strings.Join(known, ", "))
}

// pythSymbolKey normalises a subject for lookup: upper case, no Crypto.
// prefix, no separators.
func pythSymbolKey(subject string) string {
	s := strings.ToUpper(strings.TrimSpace(subject))
	s = strings.TrimPrefix(s, "CRYPTO.")
	return strings.NewReplacer("/", "", "-", "", "_", "", " ", "").Replace(s)
}

// pythBase strips a USD quote: BTCUSD → BTC.
func pythBase(key string) string {
	if b, ok := strings.CutSuffix(key, "USD"); ok && b != "" {
		return b
	}
	return key
}

// normalizePythID returns a feed id as 64 lower-case hex digits without 0x.
// Hermes returns ids without 0x but accepts both, and ids in configuration
// come in every case, so comparing normalised ids is the only safe match.
func normalizePythID(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "0x")
	if len(s) != 64 {
		return "", false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return s, true
}

// pythPrice is one parsed Hermes price update.
type pythPrice struct {
	conf            float64
	emaPrice        float64
	expo            int64
	hasEMA          bool
	id              string
	prevPublishTime int64
	price           float64
	publishTime     time.Time
	slot            int64
}

func (pp pythPrice) record(source string, req FetchRequest, step time.Duration) Record {
	meta := map[string]any{
		"expo":         pp.expo,
		"feed_id":      pp.id,
		"publish_time": pp.publishTime.Unix(),
	}
	if pp.hasEMA {
		meta["ema_price"] = pp.emaPrice
	}
	if pp.prevPublishTime != 0 {
		meta["prev_publish_time"] = pp.prevPublishTime
	}
	if pp.slot != 0 {
		meta["slot"] = pp.slot
	}
	rec := Record{
		Source:      source,
		Subject:     req.Subject,
		Kind:        req.Kind,
		Granularity: req.Granularity,
		TsEvent:     pp.publishTime,
		Values:      map[string]float64{"conf": pp.conf, "price": pp.price},
		Meta:        meta,
	}
	if req.Kind == KindCandle {
		rec.TsEvent = FloorTime(pp.publishTime, step)
		rec.Values = map[string]float64{
			"close": pp.price, "high": pp.price, "low": pp.price, "open": pp.price, "volume": 0,
		}
	}
	return rec
}

// pythScaled computes int(mantissa) × 10^expo from Hermes' string mantissa.
func pythScaled(raw json.RawMessage, expo int64) (float64, error) {
	m, err := parseInt(raw)
	if err != nil {
		return 0, err
	}
	return float64(m) * math.Pow10(int(expo)), nil
}

// parsePythLatest parses a /v2/updates/price/latest answer and returns its
// usable price updates. Rows with a bad id, mantissa, exponent or time are
// dropped and reported.
func parsePythLatest(body []byte, now time.Time) ([]pythPrice, []SkipReason, error) {
	type priceObj struct {
		Conf        json.RawMessage `json:"conf"`
		Expo        *int64          `json:"expo"`
		Price       json.RawMessage `json:"price"`
		PublishTime *int64          `json:"publish_time"`
	}
	var resp struct {
		Parsed *[]struct {
			EMAPrice *priceObj `json:"ema_price"`
			ID       string    `json:"id"`
			Metadata *struct {
				PrevPublishTime *int64 `json:"prev_publish_time"`
				Slot            *int64 `json:"slot"`
			} `json:"metadata"`
			Price *priceObj `json:"price"`
		} `json:"parsed"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, nil, badResponse("hermes latest is not the expected JSON object: %v (%s)", err, snippet(body))
	}
	if resp.Parsed == nil {
		return nil, nil, badResponse("hermes latest has no parsed prices (was parsed=true sent?): %s", snippet(body))
	}
	f := rowFilter{now: now, futureSlack: pythFutureSlack}
	var out []pythPrice
	for i, row := range *resp.Parsed {
		id, ok := normalizePythID(row.ID)
		if !ok {
			f.skip(i, SkipMalformed, time.Time{}, "feed id %q is not 32-byte hex", row.ID)
			continue
		}
		if row.Price == nil || row.Price.Expo == nil || row.Price.PublishTime == nil {
			f.skip(i, SkipMalformed, time.Time{}, "feed %s has no price, expo or publish_time", id)
			continue
		}
		expo := *row.Price.Expo
		if expo < pythMinExpo || expo > pythMaxExpo {
			f.skip(i, SkipMalformed, time.Time{}, "feed %s exponent %d is out of range", id, expo)
			continue
		}
		ts := time.Unix(*row.Price.PublishTime, 0).UTC()
		price, err := pythScaled(row.Price.Price, expo)
		if err != nil {
			f.skip(i, SkipMalformed, ts, "feed %s price %s is not an integer", id, snippet(row.Price.Price))
			continue
		}
		if !finite(price) {
			f.skip(i, SkipNonFinite, ts, "feed %s price is not finite", id)
			continue
		}
		if price <= 0 {
			f.skip(i, SkipNonPositive, ts, "feed %s price %g is not positive", id, price)
			continue
		}
		conf, err := pythScaled(row.Price.Conf, expo)
		if err != nil || !finite(conf) || conf < 0 {
			conf = 0 // confidence is informative only; a bad one does not spoil the price
		}
		// Each id is a separate series, so order and duplicates are checked
		// per id by a fresh filter sharing the same clock.
		idFilter := rowFilter{now: now, futureSlack: pythFutureSlack}
		if !idFilter.acceptTime(i, ts) {
			f.skipped = append(f.skipped, idFilter.skipped...)
			continue
		}
		pp := pythPrice{conf: conf, expo: expo, id: id, price: price, publishTime: ts}
		if row.EMAPrice != nil && row.EMAPrice.Expo != nil {
			if ema, err := pythScaled(row.EMAPrice.Price, *row.EMAPrice.Expo); err == nil && finite(ema) && ema > 0 &&
				*row.EMAPrice.Expo >= pythMinExpo && *row.EMAPrice.Expo <= pythMaxExpo {
				pp.emaPrice, pp.hasEMA = ema, true
			}
		}
		if row.Metadata != nil {
			if row.Metadata.Slot != nil {
				pp.slot = *row.Metadata.Slot
			}
			if row.Metadata.PrevPublishTime != nil {
				pp.prevPublishTime = *row.Metadata.PrevPublishTime
			}
		}
		if j := slices.IndexFunc(out, func(o pythPrice) bool { return o.id == id }); j >= 0 {
			f.skip(i, SkipDuplicate, ts, "feed %s appears twice; keeping the newer update", id)
			if ts.After(out[j].publishTime) {
				out[j] = pp
			}
			continue
		}
		out = append(out, pp)
	}
	return out, f.skipped, nil
}

type udfParams struct {
	end         time.Time
	granularity string
	kind        string
	now         time.Time
	source      string
	start       time.Time
	step        time.Duration
	subject     string
}

type udfResult struct {
	records []Record
	skipped []SkipReason
}

// udfUnknownSymbol recognises the "no such symbol" messages of UDF servers.
func udfUnknownSymbol(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "symbol") &&
		(strings.Contains(m, "not found") || strings.Contains(m, "unknown") || strings.Contains(m, "invalid"))
}

// parseUDFHistory parses a TradingView UDF /history answer:
// {"s":"ok","t":[...],"o":[...],"h":[...],"l":[...],"c":[...],"v":[...]} with
// parallel arrays and t in unix seconds, or {"s":"no_data"} or
// {"s":"error","errmsg":"..."}. Only closed bars inside [start, end] are kept.
func parseUDFHistory(body []byte, p udfParams) (udfResult, error) {
	var resp struct {
		C        []json.RawMessage `json:"c"`
		Errmsg   string            `json:"errmsg"`
		H        []json.RawMessage `json:"h"`
		L        []json.RawMessage `json:"l"`
		NextTime *int64            `json:"nextTime"`
		O        []json.RawMessage `json:"o"`
		S        string            `json:"s"`
		T        []json.RawMessage `json:"t"`
		V        []json.RawMessage `json:"v"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return udfResult{}, badResponse("UDF history is not the expected JSON object: %v (%s)", err, snippet(body))
	}
	switch resp.S {
	case "ok":
	case "no_data":
		return udfResult{}, nil
	case "error":
		if udfUnknownSymbol(resp.Errmsg) {
			return udfResult{}, fmt.Errorf("%w: %s", ErrUnknownSubject, resp.Errmsg)
		}
		return udfResult{}, badResponse("UDF history error: %s", resp.Errmsg)
	default:
		return udfResult{}, badResponse("UDF history status %q is not ok, no_data or error", resp.S)
	}

	res := udfResult{}
	f := rowFilter{end: p.end, now: p.now, start: p.start}
	at := func(a []json.RawMessage, i int) (float64, error) {
		if i >= len(a) {
			return 0, errNotNumber
		}
		return parseNumber(a[i])
	}
	for i, rawT := range resp.T {
		sec, err := parseInt(rawT)
		if err != nil || sec < 0 || sec > maxEventTime.Unix() {
			f.skip(i, SkipMalformed, time.Time{}, "bar time is not a plausible unix time")
			continue
		}
		ts := time.Unix(sec, 0).UTC()
		var c ohlcv
		bad := false
		for j, pair := range []struct {
			arr []json.RawMessage
			dst *float64
		}{{resp.O, &c.open}, {resp.H, &c.high}, {resp.L, &c.low}, {resp.C, &c.close}} {
			v, err := at(pair.arr, i)
			if err != nil {
				f.skip(i, SkipMalformed, ts, "bar field %c is missing or not a number", "ohlc"[j])
				bad = true
				break
			}
			*pair.dst = v
		}
		if bad {
			continue
		}
		if v, err := at(resp.V, i); err == nil {
			c.volume, c.hasVolume = v, true
		}
		if reason, detail := c.check(); reason != "" {
			f.skip(i, reason, ts, "%s", detail)
			continue
		}
		if !f.acceptTime(i, ts) {
			continue
		}
		if ts.Add(p.step).After(p.now) {
			f.skip(i, SkipNotClosed, ts, "bar closes at %s, after now", ts.Add(p.step).Format(time.RFC3339))
			continue
		}
		res.records = append(res.records, Record{
			Source:      p.source,
			Subject:     p.subject,
			Kind:        p.kind,
			Granularity: p.granularity,
			TsEvent:     ts,
			Values:      c.values(),
			Meta:        map[string]any{},
		})
	}
	res.skipped = f.skipped
	return res, nil
}
