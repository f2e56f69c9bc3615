package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// klinesNow is during the fifth row of klines_1m.json, which is still forming.
var klinesNow = ms(1702939290000)

func newTestBinance(t *testing.T, now time.Time, h http.HandlerFunc, opts Options) *Binance {
	t.Helper()
	srv := newServer(t, h)
	o := Options{"base_url": srv.URL}
	for k, v := range opts {
		o[k] = v
	}
	b, err := NewBinance(Config{HTTPClient: srv.Client(), Now: fixedClock(now), Options: o, UserAgent: "crunch-node-test"})
	require.NoError(t, err)
	return b
}

func TestBinanceFetchKlines(t *testing.T) {
	t.Parallel()

	var got *http.Request
	b := newTestBinance(t, klinesNow, func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixture(t, "binance/klines_1m.json"))
	}, nil)

	start := ms(1702939020000)
	page, err := b.Fetch(context.Background(), FetchRequest{End: klinesNow, Granularity: "1m", Kind: KindCandle, Start: start, Subject: "btcusdt"})
	require.NoError(t, err)

	require.Equal(t, "/api/v3/klines", got.URL.Path)
	q := got.URL.Query()
	require.Equal(t, "BTCUSDT", q.Get("symbol"))
	require.Equal(t, "1m", q.Get("interval"))
	require.Equal(t, "1000", q.Get("limit"))
	require.Equal(t, "1702939020000", q.Get("startTime"))
	require.Equal(t, "1702939290000", q.Get("endTime"))
	require.Equal(t, "crunch-node-test", got.Header.Get("User-Agent"))

	// Four closed candles; the fifth is forming and is reported, not kept.
	require.Len(t, page.Records, 4)
	require.Equal(t, []SkipReason{{
		Detail: "candle closes at 2023-12-18T22:41:59Z, after now", Index: 4, Reason: SkipNotClosed, TsEvent: ms(1702939260000),
	}}, page.Skipped)
	require.False(t, page.More)

	first := page.Records[0]
	require.Equal(t, Record{
		Source:      ProviderBinance,
		Subject:     "btcusdt",
		Kind:        KindCandle,
		Granularity: "1m",
		TsEvent:     ms(1702939020000),
		Values:      map[string]float64{"open": 42430.1, "high": 42455, "low": 42420, "close": 42450.2, "volume": 130.512},
		Meta: map[string]any{
			"close_time": int64(1702939079999), "quote_volume": 5540260.5024, "trades": 1000.0,
			"taker_buy_base_volume": 78.3072, "taker_buy_quote_volume": 3324156.30144,
		},
	}, first)
	for i := 1; i < len(page.Records); i++ {
		require.Equal(t, time.Minute, page.Records[i].TsEvent.Sub(page.Records[i-1].TsEvent))
	}

	t.Run("FullPageMore", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name     string
			now      time.Time
			wantMore bool
		}{
			// The page ends with the forming candle: nothing closed follows.
			{name: "LastForming", now: klinesNow},
			// All five closed and the sixth has closed too by now.
			{name: "NextClosed", now: ms(1702939380000), wantMore: true},
			// All five closed, but the sixth is still forming.
			{name: "NextForming", now: ms(1702939330000)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := newTestBinance(t, tt.now, serveBody(200, "application/json", fixture(t, "binance/klines_1m.json"), nil), nil)
				page, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Limit: 5, Subject: "BTCUSDT"})
				require.NoError(t, err)
				require.Equal(t, tt.wantMore, page.More)
				if tt.wantMore {
					require.Equal(t, ms(1702939320000), page.Next)
				}
			})
		}
	})

	t.Run("AfterClose", func(t *testing.T) {
		t.Parallel()
		b := newTestBinance(t, ms(1702939320000), serveBody(200, "application/json", fixture(t, "binance/klines_1m.json"), nil), nil)
		page, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Subject: "BTCUSDT"})
		require.NoError(t, err)
		require.Len(t, page.Records, 5)
		require.Empty(t, page.Skipped)
		last := page.Records[4]
		require.InDelta(t, 42494.6, last.Values["close"], 1e-9)
		require.InDelta(t, 2186.0, last.Meta["trades"], 0)
	})
}

func TestBinanceFetchOneSecond(t *testing.T) {
	t.Parallel()

	var interval string
	b := newTestBinance(t, ms(1702939270000), func(w http.ResponseWriter, r *http.Request) {
		interval = r.URL.Query().Get("interval")
		_, _ = w.Write(fixture(t, "binance/klines_1s.json"))
	}, nil)
	page, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1s", Kind: KindCandle, Subject: "BTCUSDT"})
	require.NoError(t, err)
	require.Equal(t, "1s", interval, "1s must be Binance's real 1s interval, not 1m relabelled")
	require.Len(t, page.Records, 4)
	for i, r := range page.Records {
		require.Equal(t, "1s", r.Granularity)
		require.Equal(t, ms(1702939260000+int64(i)*1000), r.TsEvent)
	}
}

func TestParseBinanceKlinesBadRows(t *testing.T) {
	t.Parallel()

	res, err := parseBinanceKlines(fixture(t, "binance/klines_bad_rows.json"), klineParams{
		granularity: "1m", kind: KindCandle, now: ms(1702939500000), source: "binance", step: time.Minute, subject: "BTCUSDT",
	})
	require.NoError(t, err)
	require.Equal(t, 13, res.rawRows)

	var times []time.Time
	for _, r := range res.records {
		times = append(times, r.TsEvent)
	}
	require.Equal(t, []time.Time{ms(1702939020000), ms(1702939080000), ms(1702939140000)}, times)

	var reasons []string
	var indexes []int
	for _, s := range res.skipped {
		reasons = append(reasons, s.Reason)
		indexes = append(indexes, s.Index)
	}
	require.Equal(t, []string{
		SkipNonFinite, SkipNonPositive, SkipDuplicate, SkipOutOfOrder, SkipInconsistent,
		SkipMalformed, SkipMalformed, SkipMalformed, SkipMalformed, SkipFuture,
	}, reasons)
	require.Equal(t, []int{1, 2, 4, 5, 6, 7, 8, 9, 10, 12}, indexes)
}

func TestParseBinanceKlinesTable(t *testing.T) {
	t.Parallel()

	now := ms(1702939500000)
	row := func(open int64, o, h, l, c, v string) string {
		return fmt.Sprintf(`[%d,%q,%q,%q,%q,%q,%d,"0",1,"0","0","0"]`, open, o, h, l, c, v, open+59999)
	}
	tests := []struct {
		name        string
		body        string
		start, end  time.Time
		wantErr     bool
		wantRecords int
		wantReasons []string
	}{
		{name: "Empty", body: `[]`},
		{name: "HighBelowClose", body: "[" + row(1702939020000, "10", "11", "9", "12", "1") + "]", wantReasons: []string{SkipInconsistent}},
		{name: "Infinity", body: "[" + row(1702939020000, "Infinity", "11", "9", "10", "1") + "]", wantReasons: []string{SkipNonFinite}},
		{name: "NegativeVolume", body: "[" + row(1702939020000, "10", "11", "9", "10", "-1") + "]", wantReasons: []string{SkipInconsistent}},
		{name: "NotArray", body: `{"code":-1121,"msg":"Invalid symbol."}`, wantErr: true},
		{name: "Null", body: `null`},
		{name: "NumbersNotStrings", body: `[[1702939020000,10,11,9,10,1,1702939079999]]`, wantRecords: 1},
		{name: "OutOfRange", body: "[" + row(1702939020000, "10", "11", "9", "10", "1") + "," + row(1702939080000, "10", "11", "9", "10", "1") + "]", start: ms(1702939080000), wantRecords: 1, wantReasons: []string{SkipOutOfRange}},
		{name: "Overflow", body: "[" + row(1702939020000, "1e999", "11", "9", "10", "1") + "]", wantReasons: []string{SkipNonFinite}},
		{name: "SecondsNotMillis", body: "[" + row(1702939020, "10", "11", "9", "10", "1") + "]", wantReasons: []string{SkipMalformed}},
		{name: "Truncated", body: `[[1702939020000,"10"`, wantErr: true},
		{name: "ZeroPrice", body: "[" + row(1702939020000, "0", "11", "0", "10", "1") + "]", wantReasons: []string{SkipNonPositive}},
		{name: "ZeroVolumeOK", body: "[" + row(1702939020000, "10", "10", "10", "10", "0") + "]", wantRecords: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := parseBinanceKlines([]byte(tt.body), klineParams{end: tt.end, granularity: "1m", kind: KindCandle, now: now, start: tt.start, step: time.Minute})
			if tt.wantErr {
				require.ErrorIs(t, err, ErrBadResponse)
				return
			}
			require.NoError(t, err)
			require.Len(t, res.records, tt.wantRecords)
			var reasons []string
			for _, s := range res.skipped {
				reasons = append(reasons, s.Reason)
			}
			require.Equal(t, tt.wantReasons, reasons)
		})
	}
}

func TestBinanceErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name           string
		status         int
		contentType    string
		body           []byte
		headers        map[string]string
		wantIs         error
		wantRetryAfter time.Duration
		wantMsg        string
	}{
		{name: "BadGatewayHTML", status: 502, contentType: "text/html", body: fixture(t, "binance/error_gateway.html"), wantIs: ErrUnavailable, wantMsg: "502 Bad Gateway"},
		{name: "Banned418", status: 418, contentType: "application/json", body: fixture(t, "binance/error_rate_limit.json"), headers: map[string]string{"Retry-After": "600"}, wantIs: ErrRateLimited, wantRetryAfter: 10 * time.Minute},
		{name: "HTMLWith200", status: 200, contentType: "text/html; charset=utf-8", body: fixture(t, "binance/error_gateway.html"), wantIs: ErrBadResponse, wantMsg: "HTML page"},
		{name: "HTMLWithJSONType", status: 200, contentType: "application/json", body: []byte("<!doctype html><p>captive portal</p>"), wantIs: ErrBadResponse},
		{name: "InvalidSymbol", status: 400, contentType: "application/json", body: fixture(t, "binance/error_invalid_symbol.json"), wantIs: ErrUnknownSubject, wantMsg: "code -1121: Invalid symbol."},
		{name: "MalformedJSON", status: 200, contentType: "application/json", body: []byte(`[[1702939020000,"1"`), wantIs: ErrBadResponse},
		{name: "RateLimited429", status: 429, contentType: "application/json", body: fixture(t, "binance/error_rate_limit.json"), headers: map[string]string{"Retry-After": "7"}, wantIs: ErrRateLimited, wantRetryAfter: 7 * time.Second, wantMsg: "Too many requests"},
		{name: "Unavailable503", status: 503, body: []byte("Service Unavailable"), wantIs: ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newTestBinance(t, klinesNow, serveBody(tt.status, tt.contentType, tt.body, tt.headers), nil)
			_, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Subject: "BTCUSDT"})
			require.ErrorIs(t, err, tt.wantIs)
			require.ErrorContains(t, err, "fetching klines for BTCUSDT")
			if tt.wantMsg != "" {
				require.ErrorContains(t, err, tt.wantMsg)
			}
			d, ok := RetryAfter(err)
			if errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) {
				require.True(t, ok)
				require.Equal(t, tt.wantRetryAfter, d)
			} else {
				require.False(t, ok)
			}
		})
	}

	t.Run("RegionRefused", func(t *testing.T) {
		t.Parallel()
		b := newTestBinance(t, klinesNow, serveBody(451, "application/json", []byte(`{"code":0,"msg":"Service unavailable from a restricted location"}`), nil), nil)
		_, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Subject: "BTCUSDT"})
		require.ErrorContains(t, err, "data-api.binance.vision")
		_, ok := RetryAfter(err)
		require.False(t, ok)
	})

	t.Run("Timeout", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		b := newTestBinance(t, klinesNow, func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}, Options{"timeout_seconds": "0.05"})
		_, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Subject: "BTCUSDT"})
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})

	t.Run("CallerCanceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		b := newTestBinance(t, klinesNow, func(_ http.ResponseWriter, r *http.Request) {
			cancel()
			<-r.Context().Done()
		}, nil)
		_, err := b.Fetch(ctx, FetchRequest{Granularity: "1m", Kind: KindCandle, Subject: "BTCUSDT"})
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestBinanceUnsupported(t *testing.T) {
	t.Parallel()

	var calls atomic.Int32
	b := newTestBinance(t, klinesNow, func(http.ResponseWriter, *http.Request) { calls.Add(1) }, nil)
	for _, req := range []FetchRequest{
		{Granularity: "3m", Kind: KindCandle, Subject: "BTCUSDT"},
		{Granularity: "1m", Kind: "depth", Subject: "BTCUSDT"},
	} {
		_, err := b.Fetch(context.Background(), req)
		require.ErrorIs(t, err, ErrUnsupported)
	}
	_, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1x", Kind: KindCandle, Subject: "BTCUSDT"})
	require.ErrorContains(t, err, "granularity")
	_, err = b.Latest(context.Background(), "BTCUSDT", "funding", "1m")
	require.ErrorIs(t, err, ErrUnsupported)
	require.Zero(t, calls.Load())

	_, err = NewBinance(Config{Options: Options{"base_url": "not a url"}})
	require.ErrorContains(t, err, "base_url")
}

func TestBinanceTicker(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 11, 1, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name    string
		body    string
		wantErr error
		want    float64
	}{
		{name: "Negative", body: `{"symbol":"BTCUSDT","price":"-1"}`, wantErr: ErrBadResponse},
		{name: "NotNumber", body: `{"symbol":"BTCUSDT","price":"n/a"}`, wantErr: ErrBadResponse},
		{name: "NaN", body: `{"symbol":"BTCUSDT","price":"NaN"}`, wantErr: ErrBadResponse},
		{name: "OK", body: string(fixture(t, "binance/ticker_price.json")), want: 42494.6},
		{name: "WrongSymbol", body: `{"symbol":"ETHUSDT","price":"3000"}`, wantErr: ErrBadResponse},
		{name: "Zero", body: `{"symbol":"BTCUSDT","price":"0.00000000"}`, wantErr: ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var path, symbol string
			b := newTestBinance(t, now, func(w http.ResponseWriter, r *http.Request) {
				path, symbol = r.URL.Path, r.URL.Query().Get("symbol")
				_, _ = w.Write([]byte(tt.body))
			}, nil)
			recs, err := b.Latest(context.Background(), "BTC/USDT", KindTick, "1s")
			require.Equal(t, "/api/v3/ticker/price", path)
			require.Equal(t, "BTCUSDT", symbol)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorContains(t, err, "fetching ticker price for BTCUSDT")
				return
			}
			require.NoError(t, err)
			require.Equal(t, []Record{{
				Source: ProviderBinance, Subject: "BTC/USDT", Kind: KindTick, Granularity: "1s",
				TsEvent: now.Truncate(time.Millisecond), Values: map[string]float64{"price": tt.want},
				Meta: map[string]any{"symbol": "BTCUSDT"},
			}}, recs)
		})
	}

	t.Run("FetchInRange", func(t *testing.T) {
		t.Parallel()
		b := newTestBinance(t, now, serveBody(200, "application/json", fixture(t, "binance/ticker_price.json"), nil), nil)
		page, err := b.Fetch(context.Background(), FetchRequest{Granularity: "1s", Kind: KindTick, Start: now.Add(-time.Minute), Subject: "BTCUSDT"})
		require.NoError(t, err)
		require.Len(t, page.Records, 1)
	})

	t.Run("FetchHistoryUnavailable", func(t *testing.T) {
		t.Parallel()
		b := newTestBinance(t, now, serveBody(200, "application/json", fixture(t, "binance/ticker_price.json"), nil), nil)
		page, err := b.Fetch(context.Background(), FetchRequest{End: now.Add(-time.Hour), Granularity: "1s", Kind: KindTick, Start: now.Add(-2 * time.Hour), Subject: "BTCUSDT"})
		require.NoError(t, err)
		require.Empty(t, page.Records)
		require.Equal(t, SkipNoHistory, page.Skipped[0].Reason)
	})
}

func TestBinanceLatestCandle(t *testing.T) {
	t.Parallel()

	rows := fixture(t, "binance/klines_1m.json")
	var all []json.RawMessage
	require.NoError(t, json.Unmarshal(rows, &all))
	last2, err := json.Marshal(all[3:])
	require.NoError(t, err)

	var limit string
	b := newTestBinance(t, klinesNow, func(w http.ResponseWriter, r *http.Request) {
		limit = r.URL.Query().Get("limit")
		require.Empty(t, r.URL.Query().Get("startTime"))
		_, _ = w.Write(last2)
	}, nil)
	recs, err := b.Latest(context.Background(), "BTCUSDT", KindCandle, "1m")
	require.NoError(t, err)
	require.Equal(t, "2", limit)
	require.Len(t, recs, 1)
	require.Equal(t, ms(1702939200000), recs[0].TsEvent, "the newest closed candle, not the forming one")
}

// klineServer serves deterministic 1m klines for [first, last] honouring
// startTime, endTime and limit the way Binance does.
func klineServer(t *testing.T, first, last time.Time, requests *atomic.Int32) http.HandlerFunc {
	t.Helper()
	return func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		start := first
		if s := q.Get("startTime"); s != "" {
			v, _ := strconv.ParseInt(s, 10, 64)
			start = ceilTime(ms(v), time.Minute)
		}
		if start.Before(first) {
			start = first
		}
		end := last
		if e := q.Get("endTime"); e != "" {
			v, _ := strconv.ParseInt(e, 10, 64)
			if ms(v).Before(end) {
				end = ms(v)
			}
		}
		rows := []any{}
		for ts := start; !ts.After(end) && len(rows) < limit; ts = ts.Add(time.Minute) {
			p := 40000 + float64(ts.Unix()%1000)
			f := strconv.FormatFloat(p, 'f', 8, 64)
			rows = append(rows, []any{ts.UnixMilli(), f, strconv.FormatFloat(p+5, 'f', 8, 64), strconv.FormatFloat(p-5, 'f', 8, 64), f, "1.00000000", ts.UnixMilli() + 59999, "0", 1, "0", "0", "0"})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-MBX-USED-WEIGHT-1M", "2")
		require.NoError(t, json.NewEncoder(w).Encode(rows))
	}
}

func TestBinanceFetchAllPaginates(t *testing.T) {
	t.Parallel()

	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	last := first.Add(2499 * time.Minute) // 2500 candles
	now := last.Add(90 * time.Second)     // last closed, next forming
	var requests atomic.Int32
	b := newTestBinance(t, now, klineServer(t, first, last.Add(time.Minute), &requests), nil)

	var got []Record
	pages := 0
	err := FetchAll(context.Background(), b, FetchRequest{Granularity: "1m", Kind: KindCandle, Start: first, Subject: "BTCUSDT"}, func(page []Record, _ bool) error {
		pages++
		got = append(got, page...)
		return nil
	})
	require.NoError(t, err)
	require.Len(t, got, 2500, "no 500-row cap")
	require.Equal(t, 3, pages)
	for i, r := range got {
		require.Equal(t, first.Add(time.Duration(i)*time.Minute), r.TsEvent)
	}
	require.Equal(t, int32(3), requests.Load())

	t.Run("BoundedByEnd", func(t *testing.T) {
		t.Parallel()
		var requests atomic.Int32
		b := newTestBinance(t, now, klineServer(t, first, last, &requests), nil)
		var n int
		err := FetchAll(context.Background(), b, FetchRequest{End: first.Add(1500 * time.Minute), Granularity: "1m", Kind: KindCandle, Limit: 500, Start: first.Add(30 * time.Second), Subject: "BTCUSDT"}, func(page []Record, _ bool) error {
			require.LessOrEqual(t, len(page), 500)
			n += len(page)
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, 1500, n) // minutes 1..1500 inclusive
		require.Equal(t, int32(3), requests.Load())
	})
}

func TestBinanceListSubjects(t *testing.T) {
	t.Parallel()

	b := newTestBinance(t, klinesNow, serveBody(200, "application/json", fixture(t, "binance/exchange_info.json"), nil), nil)
	subjects, err := b.ListSubjects(context.Background())
	require.NoError(t, err)
	var symbols []string
	for _, s := range subjects {
		symbols = append(symbols, s.Symbol)
	}
	require.Equal(t, []string{"ETHBTC", "BTCUSDT", "ETHUSDT"}, symbols)
	require.Equal(t, "BTC/USDT", subjects[1].DisplayName)
	require.Equal(t, []string{"1s", "1m", "5m", "15m", "1h", "1d"}, subjects[1].Granularities)

	b = newTestBinance(t, klinesNow, serveBody(200, "application/json", fixture(t, "binance/exchange_info.json"), nil), Options{"subject_limit": "2"})
	subjects, err = b.ListSubjects(context.Background())
	require.NoError(t, err)
	require.Len(t, subjects, 2)

	b = newTestBinance(t, klinesNow, serveBody(200, "application/json", []byte(`[1,2]`), nil), nil)
	_, err = b.ListSubjects(context.Background())
	require.ErrorIs(t, err, ErrBadResponse)
}
