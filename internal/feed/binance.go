package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// binanceDefaultBaseURL is Binance's main spot host. Regions it refuses
	// (HTTP 451) can use the public market-data mirror
	// https://data-api.binance.vision, which serves the same /api/v3 paths.
	binanceDefaultBaseURL = "https://api.binance.com"

	// binanceMaxLimit is the klines page size cap of the API.
	binanceMaxLimit = 1000

	// binanceCodeInvalidSymbol is Binance's "Invalid symbol." error code.
	binanceCodeInvalidSymbol = -1121

	// binanceDefaultSubjectLimit caps ListSubjects like the Python engine.
	binanceDefaultSubjectLimit = 500
)

// binanceGranularities are the kline intervals we request, which are spelled
// the same as our granularities. Unlike the Python engine, 1s is Binance's real
// one-second kline, and an unsupported granularity is an error rather than
// silently 1m data stored under another label.
var binanceGranularities = []string{"1s", "1m", "5m", "15m", "1h", "1d"}

// Binance reads Binance spot public market data: klines for candles and the
// ticker price for ticks. No API key is needed.
//
// Options (FEED_OPT_*): base_url (default https://api.binance.com),
// timeout_seconds (per request, default 10), subject_limit (ListSubjects cap,
// default 500).
type Binance struct {
	baseURL      string
	get          *httpGetter
	now          func() time.Time
	source       string
	subjectLimit int
}

var _ Provider = (*Binance)(nil)

// NewBinance builds a Binance provider.
func NewBinance(cfg Config) (*Binance, error) {
	get, err := cfg.getter(ProviderBinance)
	if err != nil {
		return nil, fmt.Errorf("configuring binance: %w", err)
	}
	get.unknown = func(he *HTTPError) bool { return he.Code == binanceCodeInvalidSymbol }
	limit, err := cfg.Options.Int("subject_limit", binanceDefaultSubjectLimit)
	if err != nil {
		return nil, fmt.Errorf("configuring binance: %w", err)
	}
	baseURL := cfg.Options.String("base_url", binanceDefaultBaseURL)
	if _, err := url.ParseRequestURI(baseURL); err != nil {
		return nil, fmt.Errorf("configuring binance: base_url %q: %w", baseURL, err)
	}
	return &Binance{
		baseURL:      baseURL,
		get:          get,
		now:          cfg.now,
		source:       cfg.source(ProviderBinance),
		subjectLimit: limit,
	}, nil
}

// Name implements [Provider].
func (b *Binance) Name() string { return ProviderBinance }

// ListSubjects lists trading spot symbols from exchangeInfo, capped by the
// subject_limit option.
func (b *Binance) ListSubjects(ctx context.Context) ([]Subject, error) {
	body, err := b.get.get(ctx, b.baseURL, "/api/v3/exchangeInfo", nil)
	if err != nil {
		return nil, fmt.Errorf("listing binance symbols: %w", err)
	}
	subjects, err := parseBinanceExchangeInfo(body, b.source, b.subjectLimit)
	if err != nil {
		return nil, fmt.Errorf("listing binance symbols: %w", err)
	}
	return subjects, nil
}

// Fetch implements [Provider]. Candles come from /api/v3/klines, paged by
// startTime; ticks are the current ticker price, because Binance keeps no
// public tick history (the record is returned only when now is in range).
func (b *Binance) Fetch(ctx context.Context, req FetchRequest) (Page, error) {
	step, err := req.validate()
	if err != nil {
		return Page{}, fmt.Errorf("fetching binance %s: %w", req.Subject, err)
	}
	symbol := binanceSymbol(req.Subject)
	switch req.Kind {
	case KindCandle:
		return b.fetchKlines(ctx, req, symbol, step)
	case KindTick:
		now := b.now()
		if (!req.Start.IsZero() && now.Before(req.Start)) || (!req.End.IsZero() && now.After(req.End)) {
			return Page{Skipped: []SkipReason{{
				Detail: "binance has no public tick history; only the current price can be fetched",
				Index:  -1,
				Reason: SkipNoHistory,
			}}}, nil
		}
		rec, err := b.ticker(ctx, req, symbol)
		if err != nil {
			return Page{}, err
		}
		return Page{Records: []Record{rec}}, nil
	}
	return Page{}, fmt.Errorf("fetching binance %s: kind %q: %w (want candle or tick)", req.Subject, req.Kind, ErrUnsupported)
}

// Latest implements [Provider]: the last closed candle, or the ticker price.
func (b *Binance) Latest(ctx context.Context, subject, kind, granularity string) ([]Record, error) {
	req := FetchRequest{Granularity: granularity, Kind: kind, Subject: subject}
	step, err := req.validate()
	if err != nil {
		return nil, fmt.Errorf("fetching latest binance %s: %w", subject, err)
	}
	symbol := binanceSymbol(subject)
	switch kind {
	case KindCandle:
		// Two rows: the last closed candle and the one still forming.
		req.Limit = 2
		page, err := b.fetchKlines(ctx, req, symbol, step)
		if err != nil {
			return nil, err
		}
		if len(page.Records) == 0 {
			return []Record{}, nil
		}
		return page.Records[len(page.Records)-1:], nil
	case KindTick:
		rec, err := b.ticker(ctx, req, symbol)
		if err != nil {
			return nil, err
		}
		return []Record{rec}, nil
	}
	return nil, fmt.Errorf("fetching latest binance %s: kind %q: %w (want candle or tick)", subject, kind, ErrUnsupported)
}

func (b *Binance) fetchKlines(ctx context.Context, req FetchRequest, symbol string, step time.Duration) (Page, error) {
	interval := req.Granularity
	if !slices.Contains(binanceGranularities, interval) {
		return Page{}, fmt.Errorf("fetching klines for %s: granularity %q: %w (want 1s, 1m, 5m, 15m, 1h or 1d)", symbol, req.Granularity, ErrUnsupported)
	}
	limit := req.Limit
	if limit <= 0 || limit > binanceMaxLimit {
		limit = binanceMaxLimit
	}
	now := b.now()
	q := url.Values{}
	q.Set("symbol", symbol)
	q.Set("interval", interval)
	q.Set("limit", strconv.Itoa(limit))
	if !req.Start.IsZero() {
		q.Set("startTime", strconv.FormatInt(req.Start.UnixMilli(), 10))
	}
	if !req.End.IsZero() {
		q.Set("endTime", strconv.FormatInt(req.End.UnixMilli(), 10))
	}
	body, err := b.get.get(ctx, b.baseURL, "/api/v3/klines", q)
	if err != nil {
		return Page{}, fmt.Errorf("fetching klines for %s: %w", symbol, err)
	}
	res, err := parseBinanceKlines(body, klineParams{
		end:         req.End,
		granularity: req.Granularity,
		kind:        req.Kind,
		now:         now,
		source:      b.source,
		start:       req.Start,
		step:        step,
		subject:     req.Subject,
	})
	if err != nil {
		return Page{}, fmt.Errorf("fetching klines for %s: %w", symbol, err)
	}
	page := Page{Records: res.records, Skipped: res.skipped}
	// Page on the raw rows, not the kept ones: a page that ends in bad rows
	// must still move forward. A full page means there may be more, if the
	// next candle is inside the range and would already be closed.
	if res.rawRows >= limit && !res.lastOpen.IsZero() {
		next := res.lastOpen.Add(step)
		closed := !next.Add(step).After(now)
		if closed && (req.End.IsZero() || !next.After(req.End)) && (req.Start.IsZero() || next.After(req.Start)) {
			page.More = true
			page.Next = next
		}
	}
	return page, nil
}

func (b *Binance) ticker(ctx context.Context, req FetchRequest, symbol string) (Record, error) {
	now := b.now()
	body, err := b.get.get(ctx, b.baseURL, "/api/v3/ticker/price", url.Values{"symbol": {symbol}})
	if err != nil {
		return Record{}, fmt.Errorf("fetching ticker price for %s: %w", symbol, err)
	}
	price, err := parseBinanceTicker(body, symbol)
	if err != nil {
		return Record{}, fmt.Errorf("fetching ticker price for %s: %w", symbol, err)
	}
	return Record{
		Source:      b.source,
		Subject:     req.Subject,
		Kind:        KindTick,
		Granularity: req.Granularity,
		// The ticker carries no time: the observation time is ours.
		TsEvent: now.Truncate(time.Millisecond),
		Values:  map[string]float64{"price": price},
		Meta:    map[string]any{"symbol": symbol},
	}, nil
}

// binanceSymbol turns a subject into a Binance symbol: upper case with
// separators removed, so BTC/USDT and btc-usdt both mean BTCUSDT.
func binanceSymbol(subject string) string {
	s := strings.ToUpper(strings.TrimSpace(subject))
	return strings.NewReplacer("/", "", "-", "", "_", "").Replace(s)
}

type klineParams struct {
	end         time.Time
	granularity string
	kind        string
	now         time.Time
	source      string
	start       time.Time
	step        time.Duration
	subject     string
}

type klineResult struct {
	lastOpen time.Time
	rawRows  int
	records  []Record
	skipped  []SkipReason
}

// parseBinanceKlines parses a klines answer: an array of 12-element arrays
// [openTime, "open", "high", "low", "close", "volume", closeTime,
// "quoteVolume", trades, "takerBuyBase", "takerBuyQuote", "ignore"]. A body
// that is not an array of arrays is ErrBadResponse; bad rows are dropped and
// reported. Only candles whose close time is before now are kept.
func parseBinanceKlines(body []byte, p klineParams) (klineResult, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return klineResult{}, badResponse("klines are not a JSON array: %v (%s)", err, snippet(body))
	}
	res := klineResult{rawRows: len(rows)}
	f := rowFilter{end: p.end, now: p.now, start: p.start}
	for i, raw := range rows {
		var cols []json.RawMessage
		if err := json.Unmarshal(raw, &cols); err != nil || len(cols) < 7 {
			f.skip(i, SkipMalformed, time.Time{}, "kline row is not an array of at least 7 fields")
			continue
		}
		openMs, err := parseInt(cols[0])
		if err != nil {
			f.skip(i, SkipMalformed, time.Time{}, "kline open time is not an integer")
			continue
		}
		open := time.UnixMilli(openMs).UTC()
		if open.After(res.lastOpen) && !open.After(maxEventTime) {
			res.lastOpen = open
		}
		closeMs, err := parseInt(cols[6])
		if err != nil {
			f.skip(i, SkipMalformed, open, "kline close time is not an integer")
			continue
		}
		var c ohlcv
		fields := []*float64{&c.open, &c.high, &c.low, &c.close, &c.volume}
		bad := false
		for j, dst := range fields {
			v, err := parseNumber(cols[1+j])
			if err != nil {
				bad = true
				break
			}
			*dst = v
		}
		if bad {
			f.skip(i, SkipMalformed, open, "kline price or volume is not a number")
			continue
		}
		c.hasVolume = true
		if reason, detail := c.check(); reason != "" {
			f.skip(i, reason, open, "%s", detail)
			continue
		}
		closeTime := time.UnixMilli(closeMs).UTC()
		if closeTime.Before(open) {
			f.skip(i, SkipInconsistent, open, "kline close time is before its open time")
			continue
		}
		if !f.acceptTime(i, open) {
			continue
		}
		// The candle still forming changes until it closes: storing it now
		// would freeze its first seconds as if final.
		if !closeTime.Before(p.now) {
			f.skip(i, SkipNotClosed, open, "candle closes at %s, after now", closeTime.Format(time.RFC3339))
			continue
		}
		meta := map[string]any{"close_time": closeMs}
		for j, name := range map[int]string{7: "quote_volume", 8: "trades", 9: "taker_buy_base_volume", 10: "taker_buy_quote_volume"} {
			if j < len(cols) {
				if v, err := parseNumber(cols[j]); err == nil && finite(v) {
					meta[name] = v
				}
			}
		}
		res.records = append(res.records, Record{
			Source:      p.source,
			Subject:     p.subject,
			Kind:        p.kind,
			Granularity: p.granularity,
			TsEvent:     open,
			Values:      c.values(),
			Meta:        meta,
		})
	}
	res.skipped = f.skipped
	return res, nil
}

// parseBinanceTicker parses {"symbol": "BTCUSDT", "price": "42494.6"} and
// checks that the symbol is the one asked for and the price is usable.
func parseBinanceTicker(body []byte, symbol string) (float64, error) {
	var t struct {
		Price  json.RawMessage `json:"price"`
		Symbol string          `json:"symbol"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return 0, badResponse("ticker is not a JSON object: %v (%s)", err, snippet(body))
	}
	if !strings.EqualFold(t.Symbol, symbol) {
		return 0, badResponse("ticker is for symbol %q, asked for %q", t.Symbol, symbol)
	}
	price, err := parseNumber(t.Price)
	switch {
	case err != nil:
		return 0, badResponse("ticker price %s is not a number", snippet(t.Price))
	case !finite(price):
		return 0, badResponse("ticker price is not finite")
	case price <= 0:
		return 0, badResponse("ticker price %g is not positive", price)
	}
	return price, nil
}

// parseBinanceExchangeInfo lists TRADING symbols from exchangeInfo.
func parseBinanceExchangeInfo(body []byte, source string, limit int) ([]Subject, error) {
	var info struct {
		Symbols []struct {
			BaseAsset  string `json:"baseAsset"`
			QuoteAsset string `json:"quoteAsset"`
			Status     string `json:"status"`
			Symbol     string `json:"symbol"`
		} `json:"symbols"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, badResponse("exchangeInfo is not a JSON object: %v (%s)", err, snippet(body))
	}
	subjects := []Subject{}
	for _, s := range info.Symbols {
		if s.Symbol == "" || s.Status != "TRADING" {
			continue
		}
		if limit > 0 && len(subjects) >= limit {
			break
		}
		subjects = append(subjects, Subject{
			DisplayName:   s.BaseAsset + "/" + s.QuoteAsset,
			Granularities: slices.Clone(binanceGranularities),
			Kinds:         []string{KindCandle, KindTick},
			Meta:          map[string]any{"base_asset": s.BaseAsset, "quote_asset": s.QuoteAsset},
			Source:        source,
			Symbol:        s.Symbol,
		})
	}
	return subjects, nil
}
