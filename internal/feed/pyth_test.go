package feed

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	btcFeedID = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
	ethFeedID = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
	solFeedID = "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"
)

// pythNow is shortly after the publish time of the latest_*.json fixtures.
var pythNow = unix(1763900003)

func newTestPyth(t *testing.T, now time.Time, hermes, history http.HandlerFunc, opts Options) *Pyth {
	t.Helper()
	o := Options{}
	if hermes != nil {
		o["hermes_url"] = newServer(t, hermes).URL
	}
	if history != nil {
		o["history_url"] = newServer(t, history).URL + "/v1"
	}
	for k, v := range opts {
		o[k] = v
	}
	p, err := NewPyth(Config{Now: fixedClock(now), Options: o})
	require.NoError(t, err)
	return p
}

func TestPythResolve(t *testing.T) {
	t.Parallel()

	p := newTestPyth(t, pythNow, nil, nil, Options{"feed_id_SOL": "0x" + strings.ToUpper(solFeedID), "feed_id_btcusdt": btcFeedID})
	tests := []struct {
		subject     string
		wantID      string
		wantHistory string
	}{
		{subject: "0X" + strings.ToUpper(btcFeedID), wantID: btcFeedID, wantHistory: "Crypto.BTC/USD"},
		{subject: "0x" + ethFeedID, wantID: ethFeedID, wantHistory: "Crypto.ETH/USD"},
		{subject: "BTC", wantID: btcFeedID, wantHistory: "Crypto.BTC/USD"},
		{subject: "BTC-USD", wantID: btcFeedID, wantHistory: "Crypto.BTC/USD"},
		{subject: "BTC/USD", wantID: btcFeedID, wantHistory: "Crypto.BTC/USD"},
		{subject: "BTCUSD", wantID: btcFeedID, wantHistory: "Crypto.BTC/USD"},
		{subject: "BTCUSDT", wantID: btcFeedID, wantHistory: "Crypto.BTC/USD"},
		{subject: "Crypto.BTC/USD", wantID: btcFeedID, wantHistory: "Crypto.BTC/USD"},
		{subject: "crypto.eth/usd", wantID: ethFeedID, wantHistory: "crypto.eth/usd"},
		{subject: "eth", wantID: ethFeedID, wantHistory: "Crypto.ETH/USD"},
		{subject: "SOL", wantID: solFeedID, wantHistory: "Crypto.SOL/USD"},
		{subject: "SOL/USD", wantID: solFeedID, wantHistory: "Crypto.SOL/USD"},
		{subject: strings.Repeat("ab", 32), wantID: strings.Repeat("ab", 32)},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			t.Parallel()
			f, err := p.resolve(tt.subject)
			require.NoError(t, err)
			require.Equal(t, tt.wantID, f.id)
			require.Equal(t, tt.wantHistory, f.historySymbol)
		})
	}

	for _, subject := range []string{"DOGE", "", "ETHUSDT", "BTC/EUR", "0x1234"} {
		t.Run("Unknown"+subject, func(t *testing.T) {
			t.Parallel()
			_, err := p.resolve(subject)
			require.ErrorIs(t, err, ErrUnknownSubject)
			require.ErrorContains(t, err, "known: BTC, BTCUSDT, ETH, SOL")
			require.ErrorContains(t, err, "FEED_OPT_feed_id_<SYMBOL>")
		})
	}

	t.Run("BadOptionID", func(t *testing.T) {
		t.Parallel()
		_, err := NewPyth(Config{Options: Options{"feed_id_sol": "0xnothex"}})
		require.ErrorContains(t, err, "FEED_OPT_feed_id_sol")
	})

	t.Run("HistorySymbolOverride", func(t *testing.T) {
		t.Parallel()
		p := newTestPyth(t, pythNow, nil, nil, Options{"history_symbol_btc": "Crypto.BTC/USD.X"})
		f, err := p.resolve("btc")
		require.NoError(t, err)
		require.Equal(t, "Crypto.BTC/USD.X", f.historySymbol)
	})
}

func TestPythLatest(t *testing.T) {
	t.Parallel()

	var got *http.Request
	hermes := func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(fixture(t, "pyth/latest_btc.json"))
	}

	p := newTestPyth(t, pythNow, hermes, nil, Options{"api_key": "secret-key"})
	recs, err := p.Latest(context.Background(), "BTC", KindTick, "1s")
	require.NoError(t, err)
	require.Equal(t, "/v2/updates/price/latest", got.URL.Path)
	require.Equal(t, []string{btcFeedID}, got.URL.Query()["ids[]"])
	require.Equal(t, "true", got.URL.Query().Get("parsed"))
	require.Equal(t, "Bearer secret-key", got.Header.Get("Authorization"))
	require.NotEmpty(t, got.Header.Get("User-Agent"))

	require.Len(t, recs, 1)
	r := recs[0]
	require.Equal(t, unix(1763900000), r.TsEvent)
	require.Equal(t, KindTick, r.Kind)
	require.Equal(t, "BTC", r.Subject)
	require.InDelta(t, 61369.9, r.Values["price"], 1e-6)
	require.InDelta(t, 21.27, r.Values["conf"], 1e-9)
	require.Equal(t, btcFeedID, r.Meta["feed_id"])
	require.Equal(t, int64(123456789), r.Meta["slot"])
	require.InDelta(t, 61432.82, r.Meta["ema_price"], 1e-6)

	t.Run("Candle", func(t *testing.T) {
		t.Parallel()
		p := newTestPyth(t, pythNow, hermes, nil, nil)
		recs, err := p.Latest(context.Background(), "Crypto.BTC/USD", KindCandle, "1m")
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.Equal(t, unix(1763899980), recs[0].TsEvent, "floored to the minute")
		for _, k := range []string{"open", "high", "low", "close"} {
			require.InDelta(t, 61369.9, recs[0].Values[k], 1e-6, k)
		}
		require.Zero(t, recs[0].Values["volume"])
		require.Equal(t, int64(1763900000), recs[0].Meta["publish_time"])
	})

	t.Run("NoKeyNoHeader", func(t *testing.T) {
		t.Parallel()
		var auth string
		p := newTestPyth(t, pythNow, func(w http.ResponseWriter, r *http.Request) {
			auth = r.Header.Get("Authorization")
			_, _ = w.Write(fixture(t, "pyth/latest_btc.json"))
		}, nil, nil)
		_, err := p.Latest(context.Background(), "BTC", KindTick, "1s")
		require.NoError(t, err)
		require.Empty(t, auth)
	})

	t.Run("PrefixedUpperCaseIDs", func(t *testing.T) {
		t.Parallel()
		body := strings.ReplaceAll(string(fixture(t, "pyth/latest_btc_eth.json")), `"id": "`, `"id": "0x`)
		body = strings.ReplaceAll(body, ethFeedID, strings.ToUpper(ethFeedID))
		p := newTestPyth(t, pythNow, serveBody(200, "application/json", []byte(body), nil), nil, nil)
		recs, err := p.Latest(context.Background(), "ETH", KindTick, "1s")
		require.NoError(t, err)
		require.InDelta(t, 2987.12345678, recs[0].Values["price"], 1e-9)
	})

	t.Run("OtherFeedOnly", func(t *testing.T) {
		t.Parallel()
		p := newTestPyth(t, pythNow, serveBody(200, "application/json", fixture(t, "pyth/latest_btc.json"), nil), nil, nil)
		_, err := p.Latest(context.Background(), "ETH", KindTick, "1s")
		require.ErrorIs(t, err, ErrBadResponse)
		require.ErrorContains(t, err, "no price for feed id "+ethFeedID)
	})
}

func TestPythLatestErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		status  int
		body    []byte
		headers map[string]string
		subject string
		wantIs  error
		wantMsg string
	}{
		{name: "AllRowsBad", status: 200, body: fixture(t, "pyth/latest_bad.json"), subject: "BTC", wantIs: ErrBadResponse, wantMsg: "non_positive"},
		{name: "EmptyParsed", status: 200, body: []byte(`{"binary":{"encoding":"hex","data":[]},"parsed":[]}`), subject: "BTC", wantIs: ErrBadResponse},
		{name: "HTML", status: 200, body: []byte("<html><body>maintenance</body></html>"), subject: "BTC", wantIs: ErrBadResponse},
		{name: "MissingParsed", status: 200, body: []byte(`{"binary":{"encoding":"hex","data":["00"]}}`), subject: "BTC", wantIs: ErrBadResponse, wantMsg: "parsed=true"},
		{name: "NotFound", status: 404, body: fixture(t, "pyth/price_ids_not_found.txt"), subject: "BTC", wantIs: ErrUnknownSubject},
		{name: "RateLimited", status: 429, body: []byte("Too Many Requests"), headers: map[string]string{"Retry-After": "3"}, subject: "BTC", wantIs: ErrRateLimited},
		{name: "Unauthorized", status: 401, body: []byte(`{"message":"missing API key"}`), subject: "BTC", wantMsg: "HTTP 401: missing API key"},
		{name: "UnknownSubject", status: 200, body: fixture(t, "pyth/latest_btc.json"), subject: "DOGE", wantIs: ErrUnknownSubject},
		{name: "WrongShape", status: 200, body: []byte(`[1,2,3]`), subject: "BTC", wantIs: ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newTestPyth(t, pythNow, serveBody(tt.status, "", tt.body, tt.headers), nil, nil)
			_, err := p.Latest(context.Background(), tt.subject, KindTick, "1s")
			require.Error(t, err)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			if tt.wantMsg != "" {
				require.ErrorContains(t, err, tt.wantMsg)
			}
		})
	}

	t.Run("WrongURL404", func(t *testing.T) {
		t.Parallel()
		p := newTestPyth(t, pythNow, serveBody(404, "text/plain", []byte("404 page not found"), nil), nil, nil)
		_, err := p.Latest(context.Background(), "BTC", KindTick, "1s")
		require.NotErrorIs(t, err, ErrUnknownSubject)
	})
}

func TestParsePythLatestBadRows(t *testing.T) {
	t.Parallel()

	prices, skipped, err := parsePythLatest(fixture(t, "pyth/latest_bad.json"), pythNow)
	require.NoError(t, err)
	require.Empty(t, prices)
	var reasons []string
	for _, s := range skipped {
		reasons = append(reasons, s.Reason)
	}
	require.Equal(t, []string{
		SkipMalformed, SkipMalformed, SkipMalformed, SkipMalformed,
		SkipNonPositive, SkipNonPositive, SkipFuture, SkipMalformed,
	}, reasons)

	t.Run("DuplicateKeepsNewest", func(t *testing.T) {
		t.Parallel()
		body := `{"parsed":[
			{"id":"` + btcFeedID + `","price":{"price":"100","conf":"1","expo":0,"publish_time":1763899990}},
			{"id":"0x` + btcFeedID + `","price":{"price":"200","conf":"1","expo":0,"publish_time":1763900000}}]}`
		prices, skipped, err := parsePythLatest([]byte(body), pythNow)
		require.NoError(t, err)
		require.Len(t, prices, 1)
		require.InDelta(t, 200.0, prices[0].price, 0)
		require.Equal(t, SkipDuplicate, skipped[0].Reason)
	})

	t.Run("NumericMantissaAndBadConf", func(t *testing.T) {
		t.Parallel()
		body := `{"parsed":[{"id":"` + btcFeedID + `","price":{"price":6136990000000,"conf":"x","expo":-8,"publish_time":1763900000}}]}`
		prices, _, err := parsePythLatest([]byte(body), pythNow)
		require.NoError(t, err)
		require.InDelta(t, 61369.9, prices[0].price, 1e-6)
		require.Zero(t, prices[0].conf)
	})

	t.Run("SlightClockSkew", func(t *testing.T) {
		t.Parallel()
		body := `{"parsed":[{"id":"` + btcFeedID + `","price":{"price":"1","conf":"0","expo":0,"publish_time":1763900005}}]}`
		prices, _, err := parsePythLatest([]byte(body), pythNow)
		require.NoError(t, err)
		require.Len(t, prices, 1, "2s ahead of our clock is skew, not garbage")
	})
}

func TestPythHistory(t *testing.T) {
	t.Parallel()

	now := unix(1763900130) // 22:15:30 → last closed 1m bar opened at 1763900040
	var got *http.Request
	p := newTestPyth(t, now, nil, func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = w.Write(fixture(t, "pyth/udf_history_ok.json"))
	}, Options{"api_key": "k1", "history_api_key": "k2"})

	page, err := p.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Start: unix(1763899800), Subject: "BTC"})
	require.NoError(t, err)
	require.Equal(t, "/v1/history", got.URL.Path)
	q := got.URL.Query()
	require.Equal(t, "Crypto.BTC/USD", q.Get("symbol"))
	require.Equal(t, "1", q.Get("resolution"))
	require.Equal(t, "1763899800", q.Get("from"))
	require.Equal(t, "1763900040", q.Get("to"))
	require.Equal(t, "Bearer k2", got.Header.Get("Authorization"))

	require.Len(t, page.Records, 5)
	require.Empty(t, page.Skipped)
	require.False(t, page.More)
	r := page.Records[0]
	require.Equal(t, unix(1763899800), r.TsEvent)
	require.Equal(t, map[string]float64{"open": 61360.1, "high": 61380.5, "low": 61355.0, "close": 61371.0, "volume": 0}, r.Values)
	require.Equal(t, btcFeedID, r.Meta["feed_id"])

	t.Run("Resolutions", func(t *testing.T) {
		t.Parallel()
		for gran, want := range map[string]string{"1m": "1", "5m": "5", "15m": "15", "1h": "60", "1d": "1D"} {
			var res string
			p := newTestPyth(t, unix(1763900130).Add(72*time.Hour), nil, func(w http.ResponseWriter, r *http.Request) {
				res = r.URL.Query().Get("resolution")
				_, _ = w.Write(fixture(t, "pyth/udf_no_data.json"))
			}, nil)
			_, err := p.Fetch(context.Background(), FetchRequest{Granularity: gran, Kind: KindCandle, Start: unix(1763899800), Subject: "ETH"})
			require.NoError(t, err)
			require.Equal(t, want, res, gran)
		}
	})

	t.Run("NoData", func(t *testing.T) {
		t.Parallel()
		p := newTestPyth(t, now, nil, serveBody(200, "application/json", fixture(t, "pyth/udf_no_data.json"), nil), nil)
		page, err := p.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Start: unix(1763899800), Subject: "BTC"})
		require.NoError(t, err)
		require.Empty(t, page.Records)
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		for name, tc := range map[string]struct {
			status int
			body   []byte
			want   error
		}{
			"BadStatus":     {status: 200, body: []byte(`{"s":"maybe"}`), want: ErrBadResponse},
			"HTML":          {status: 502, body: []byte("<html>bad gateway</html>"), want: ErrUnavailable},
			"Malformed":     {status: 200, body: []byte(`{"s":"ok","t":[1,`), want: ErrBadResponse},
			"OtherError":    {status: 200, body: fixture(t, "pyth/udf_error_resolution.json"), want: ErrBadResponse},
			"UnknownSymbol": {status: 200, body: fixture(t, "pyth/udf_error_unknown_symbol.json"), want: ErrUnknownSubject},
			"Unknown404":    {status: 404, body: []byte(`{"s":"error","errmsg":"Symbol not found"}`), want: ErrUnknownSubject},
		} {
			p := newTestPyth(t, now, nil, serveBody(tc.status, "", tc.body, nil), nil)
			_, err := p.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: KindCandle, Start: unix(1763899800), Subject: "BTC"})
			require.ErrorIs(t, err, tc.want, name)
			require.ErrorContains(t, err, "fetching pyth history for Crypto.BTC/USD", name)
		}
	})
}

func TestParseUDFHistoryBadRows(t *testing.T) {
	t.Parallel()

	res, err := parseUDFHistory(fixture(t, "pyth/udf_bad_rows.json"), udfParams{
		granularity: "1m", kind: KindCandle, now: unix(1763900400), step: time.Minute, subject: "BTC",
	})
	require.NoError(t, err)
	var times []time.Time
	for _, r := range res.records {
		times = append(times, r.TsEvent)
		_, hasVolume := r.Values["volume"]
		require.False(t, hasVolume, "no v array, no volume")
	}
	require.Equal(t, []time.Time{unix(1763899800), unix(1763899860), unix(1763900100)}, times)
	var reasons []string
	for _, s := range res.skipped {
		reasons = append(reasons, s.Reason)
	}
	require.Equal(t, []string{
		SkipDuplicate, SkipOutOfOrder, SkipMalformed, SkipMalformed, SkipNonPositive,
		SkipInconsistent, SkipNonFinite, SkipFuture,
	}, reasons)

	t.Run("NotClosed", func(t *testing.T) {
		t.Parallel()
		res, err := parseUDFHistory(fixture(t, "pyth/udf_history_ok.json"), udfParams{now: unix(1763900070), step: time.Minute})
		require.NoError(t, err)
		require.Len(t, res.records, 4)
		require.Equal(t, SkipNotClosed, res.skipped[0].Reason)
	})

	t.Run("ShortArrays", func(t *testing.T) {
		t.Parallel()
		res, err := parseUDFHistory([]byte(`{"s":"ok","t":[1763899800,1763899860],"o":[1,1],"h":[1,1],"l":[1],"c":[1,1]}`), udfParams{now: unix(1763900400), step: time.Minute})
		require.NoError(t, err)
		require.Len(t, res.records, 1)
		require.Equal(t, SkipMalformed, res.skipped[0].Reason)
	})
}

// udfServer serves 1m bars for every minute in [first, last] except those in
// gap, honouring from and to like a UDF server.
func udfServer(t *testing.T, first, last time.Time, gapFrom, gapTo time.Time, requests *atomic.Int32) http.HandlerFunc {
	t.Helper()
	return func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		resp := map[string]any{"s": "ok"}
		var ts []int64
		var px []float64
		for s := max(from, first.Unix()); s <= min(to, last.Unix()); s += 60 {
			if s >= gapFrom.Unix() && s <= gapTo.Unix() {
				continue
			}
			ts = append(ts, s)
			px = append(px, 60000+float64(s%600))
		}
		if len(ts) == 0 {
			resp = map[string]any{"s": "no_data"}
		} else {
			resp["t"], resp["o"], resp["h"], resp["l"], resp["c"] = ts, px, px, px, px
		}
		require.NoError(t, json.NewEncoder(w).Encode(resp))
	}
}

func TestPythFetchAllHistory(t *testing.T) {
	t.Parallel()

	first := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	last := first.Add(4999 * time.Minute)
	gapFrom, gapTo := first.Add(1000*time.Minute), first.Add(3500*time.Minute) // spans whole windows
	var requests atomic.Int32
	p := newTestPyth(t, last.Add(2*time.Minute), nil, udfServer(t, first, last, gapFrom, gapTo, &requests), nil)

	var got []Record
	err := FetchAll(context.Background(), p, FetchRequest{End: last, Granularity: "1m", Kind: KindCandle, Start: first, Subject: "BTC"}, func(page []Record, _ bool) error {
		got = append(got, page...)
		return nil
	})
	require.NoError(t, err)
	require.Len(t, got, 5000-2501, "every bar outside the gap, across empty windows")
	require.Equal(t, first, got[0].TsEvent)
	require.Equal(t, last, got[len(got)-1].TsEvent)
	require.Equal(t, int32(5), requests.Load())
}

func TestPythFetchWithoutHistory(t *testing.T) {
	t.Parallel()

	hermes := serveBody(200, "application/json", fixture(t, "pyth/latest_btc.json"), nil)
	tests := []struct {
		name        string
		req         FetchRequest
		history     bool
		wantRecords int
		wantReasons []string
	}{
		{name: "CandleNoHistoryURL", req: FetchRequest{Granularity: "1m", Kind: KindCandle, Start: unix(1763899000), Subject: "BTC"}, wantRecords: 1, wantReasons: []string{SkipNoHistory}},
		{name: "CandlePoll", req: FetchRequest{Granularity: "1m", Kind: KindCandle, Start: unix(1763899980), Subject: "BTC"}, wantRecords: 1},
		{name: "OneSecondWithHistoryURL", history: true, req: FetchRequest{Granularity: "1s", Kind: KindCandle, Start: unix(1763899000), Subject: "BTC"}, wantRecords: 1, wantReasons: []string{SkipNoHistory}},
		{name: "OutOfRange", req: FetchRequest{End: unix(1763899000), Granularity: "1s", Kind: KindTick, Start: unix(1763898000), Subject: "BTC"}, wantReasons: []string{SkipNoHistory, SkipOutOfRange}},
		{name: "TickPoll", req: FetchRequest{Granularity: "1s", Kind: KindTick, Start: unix(1763899999).Add(500 * time.Millisecond), Subject: "BTC"}, wantRecords: 1},
		{name: "TickNoStart", req: FetchRequest{Granularity: "1s", Kind: KindTick, Subject: "BTC"}, wantRecords: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var history http.HandlerFunc
			if tt.history {
				history = func(http.ResponseWriter, *http.Request) { t.Error("UDF has no 1s resolution; must not be called") }
			}
			p := newTestPyth(t, pythNow, hermes, history, nil)
			page, err := p.Fetch(context.Background(), tt.req)
			require.NoError(t, err)
			require.Len(t, page.Records, tt.wantRecords)
			var reasons []string
			for _, s := range page.Skipped {
				reasons = append(reasons, s.Reason)
			}
			require.Equal(t, tt.wantReasons, reasons)
			require.False(t, page.More)
		})
	}

	t.Run("UnsupportedKind", func(t *testing.T) {
		t.Parallel()
		p := newTestPyth(t, pythNow, hermes, nil, nil)
		_, err := p.Fetch(context.Background(), FetchRequest{Granularity: "1m", Kind: "depth", Subject: "BTC"})
		require.ErrorIs(t, err, ErrUnsupported)
		_, err = p.Latest(context.Background(), "BTC", "depth", "1m")
		require.ErrorIs(t, err, ErrUnsupported)
	})
}

func TestPythListSubjects(t *testing.T) {
	t.Parallel()

	p := newTestPyth(t, pythNow, nil, nil, Options{"feed_id_sol": solFeedID})
	subjects, err := p.ListSubjects(context.Background())
	require.NoError(t, err)
	var symbols []string
	for _, s := range subjects {
		symbols = append(symbols, s.Symbol)
	}
	require.Equal(t, []string{"BTC", "ETH", "SOL"}, symbols)
	require.Equal(t, "BTC/USD", subjects[0].DisplayName)
	require.Equal(t, btcFeedID, subjects[0].Meta["feed_id"])
	require.Equal(t, ProviderPyth, subjects[0].Source)
}
