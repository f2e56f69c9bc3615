package feed

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fuzz tests for every decoder of outside input. Each checks that the parser
// never panics and that whatever it keeps satisfies the guarantees callers rely
// on: finite positive prices, strictly ascending plausible times, nothing from
// the future, and every response row either kept or reported.

func checkRecords(t *testing.T, records []Record, now time.Time, slack time.Duration) {
	t.Helper()
	var last time.Time
	for i, r := range records {
		if r.TsEvent.Before(minEventTime) || r.TsEvent.After(now.Add(slack)) {
			t.Fatalf("record %d time %s outside [%s, now]", i, r.TsEvent, minEventTime)
		}
		if i > 0 && !r.TsEvent.After(last) {
			t.Fatalf("record %d time %s not after %s", i, r.TsEvent, last)
		}
		last = r.TsEvent
		for k, v := range r.Values {
			if !finite(v) {
				t.Fatalf("record %d value %s is not finite", i, k)
			}
			if k != "volume" && v <= 0 {
				t.Fatalf("record %d value %s = %g is not positive", i, k, v)
			}
		}
	}
}

func FuzzParseBinanceKlines(f *testing.F) {
	for _, name := range []string{"binance/klines_1m.json", "binance/klines_1s.json", "binance/klines_bad_rows.json", "binance/error_invalid_symbol.json"} {
		f.Add(fixture(f, name), int64(1702939290000))
	}
	f.Add([]byte(`[[1,2,3]]`), int64(0))
	f.Add([]byte(`[[1702939020000,"1e308","1e309","-0","NaN","Infinity",1702939079999]]`), int64(1702939500000))
	f.Fuzz(func(t *testing.T, body []byte, nowMs int64) {
		now := time.UnixMilli(nowMs).UTC()
		res, err := parseBinanceKlines(body, klineParams{granularity: "1m", kind: KindCandle, now: now, step: time.Minute})
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		checkRecords(t, res.records, now, 0)
		if got := len(res.records) + len(res.skipped); got != res.rawRows {
			t.Fatalf("%d rows, but %d kept + %d skipped", res.rawRows, len(res.records), len(res.skipped))
		}
		for _, r := range res.records {
			ct, _ := r.Meta["close_time"].(int64)
			if ct >= nowMs {
				t.Fatalf("candle closing at %d kept at now %d", ct, nowMs)
			}
			if r.Values["high"] < r.Values["low"] {
				t.Fatal("high below low")
			}
		}
	})
}

func FuzzParseBinanceTicker(f *testing.F) {
	f.Add(fixture(f, "binance/ticker_price.json"), "BTCUSDT")
	f.Add([]byte(`{"symbol":"BTCUSDT","price":"NaN"}`), "BTCUSDT")
	f.Add([]byte(`{"symbol":"btcusdt","price":42}`), "BTCUSDT")
	f.Add([]byte(`<html>`), "")
	f.Fuzz(func(t *testing.T, body []byte, symbol string) {
		price, err := parseBinanceTicker(body, symbol)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		if !finite(price) || price <= 0 {
			t.Fatalf("price %g accepted", price)
		}
	})
}

func FuzzParseBinanceExchangeInfo(f *testing.F) {
	f.Add(fixture(f, "binance/exchange_info.json"), 2)
	f.Add([]byte(`{"symbols":[{"symbol":"","status":"TRADING"}]}`), 0)
	f.Fuzz(func(t *testing.T, body []byte, limit int) {
		subjects, err := parseBinanceExchangeInfo(body, "binance", limit)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		if limit > 0 && len(subjects) > limit {
			t.Fatalf("%d subjects over limit %d", len(subjects), limit)
		}
		for _, s := range subjects {
			if s.Symbol == "" {
				t.Fatal("empty symbol")
			}
		}
	})
}

func FuzzParsePythLatest(f *testing.F) {
	for _, name := range []string{"pyth/latest_btc.json", "pyth/latest_btc_eth.json", "pyth/latest_bad.json"} {
		f.Add(fixture(f, name), int64(1763900003))
	}
	f.Add([]byte(`{"parsed":[{"id":"0x`+btcFeedID+`","price":{"price":"9223372036854775807","conf":"1","expo":10,"publish_time":1763900000}}]}`), int64(1763900003))
	f.Add([]byte(`{"parsed":null}`), int64(0))
	f.Fuzz(func(t *testing.T, body []byte, nowSec int64) {
		now := time.Unix(nowSec, 0).UTC()
		prices, skipped, err := parsePythLatest(body, now)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error %v is not ErrBadResponse", err)
			}
			return
		}
		_ = skipped
		seen := map[string]bool{}
		for _, p := range prices {
			if _, ok := normalizePythID(p.id); !ok || p.id != strings.ToLower(p.id) || strings.HasPrefix(p.id, "0x") {
				t.Fatalf("id %q not normalised", p.id)
			}
			if seen[p.id] {
				t.Fatalf("id %s returned twice", p.id)
			}
			seen[p.id] = true
			if !finite(p.price) || p.price <= 0 || !finite(p.conf) || p.conf < 0 {
				t.Fatalf("price %g conf %g accepted", p.price, p.conf)
			}
			if p.publishTime.Before(minEventTime) || p.publishTime.After(now.Add(pythFutureSlack)) {
				t.Fatalf("publish time %s accepted at now %s", p.publishTime, now)
			}
		}
	})
}

func FuzzParseUDFHistory(f *testing.F) {
	for _, name := range []string{"pyth/udf_history_ok.json", "pyth/udf_bad_rows.json", "pyth/udf_no_data.json", "pyth/udf_error_unknown_symbol.json", "pyth/udf_error_resolution.json"} {
		f.Add(fixture(f, name), int64(1763900400))
	}
	f.Add([]byte(`{"s":"ok","t":[1763899800],"o":["1"],"h":[1e400],"l":[1],"c":[1]}`), int64(1763900400))
	f.Fuzz(func(t *testing.T, body []byte, nowSec int64) {
		now := time.Unix(nowSec, 0).UTC()
		res, err := parseUDFHistory(body, udfParams{granularity: "1m", kind: KindCandle, now: now, step: time.Minute})
		if err != nil {
			if !errors.Is(err, ErrBadResponse) && !errors.Is(err, ErrUnknownSubject) {
				t.Fatalf("error %v is neither ErrBadResponse nor ErrUnknownSubject", err)
			}
			return
		}
		checkRecords(t, res.records, now, 0)
		for _, r := range res.records {
			if r.TsEvent.Add(time.Minute).After(now) {
				t.Fatalf("bar %s not closed at %s", r.TsEvent, now)
			}
		}
	})
}

func FuzzParseGranularity(f *testing.F) {
	for _, s := range []string{"1s", "1m", "5m", "15m", "1h", "1d", "0m", "1M", "86400s", "1441m", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseGranularity(s)
		if err != nil {
			if !strings.Contains(err.Error(), "granularity") {
				t.Fatalf("error %q does not say what failed", err)
			}
			return
		}
		if d < time.Second || d > 24*time.Hour || d%time.Second != 0 {
			t.Fatalf("%q parsed to %s", s, d)
		}
	})
}

func FuzzSafeExportPath(f *testing.F) {
	f.Add("data", "binance", "BTCUSDT", "candle", "1m", "2026-03-10.parquet")
	f.Add("/srv/data", "..", "x", "candle", "1m", "a.parquet")
	f.Add("data", "binance", "BTC/USD", "candle", "1m", "../a.parquet")
	f.Fuzz(func(t *testing.T, root, source, subject, kind, granularity, file string) {
		p, err := SafeExportPath(root, source, subject, kind, granularity, file)
		if err != nil {
			return
		}
		rel, err := filepath.Rel(filepath.Clean(root), p)
		if err != nil || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
			t.Fatalf("path %q escapes root %q", p, root)
		}
		if strings.Count(rel, string(filepath.Separator)) != 4 || !strings.HasSuffix(p, ".parquet") {
			t.Fatalf("path %q has the wrong shape", p)
		}
	})
}
