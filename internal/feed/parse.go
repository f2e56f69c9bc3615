package feed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Plausible event times. Anything outside is a unit mix-up (seconds read as
// milliseconds or the reverse) or garbage, and would also overflow the
// nanosecond arithmetic of bucket flooring.
var (
	minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEventTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// errNotNumber is returned by the number parsers for JSON that is not a number
// or a numeric string.
var errNotNumber = errors.New("not a number")

// parseNumber reads a JSON number or a numeric string ("42477.8"), which is how
// Binance and Hermes send prices so that no precision is lost in transit.
// Non-finite values parse ("NaN", "Infinity") so callers can report them as
// non-finite rather than as malformed.
func parseNumber(raw json.RawMessage) (float64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errNotNumber
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errNotNumber
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
			return f, nil // ±Inf or 0 from overflow; the caller's checks reject it
		}
		return 0, errNotNumber
	}
	return f, nil
}

// parseInt reads a JSON integer or an integer string.
func parseInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, errNotNumber
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errNotNumber
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Some producers write integers as 1.7e12; accept exact integral floats.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, errNotNumber
		}
		return int64(f), nil
	}
	return n, nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// rowFilter applies the checks every parser shares, in a fixed order, and
// records why a row was dropped. Keeping them in one place means every provider
// treats duplicates, disorder, the future and the requested range the same way.
type rowFilter struct {
	// end and start bound accepted event times (inclusive); zero means open.
	end   time.Time
	start time.Time
	// now is the request time; events after now+futureSlack are impossible.
	now         time.Time
	futureSlack time.Duration

	last    time.Time
	skipped []SkipReason
}

// skip records a dropped row.
func (f *rowFilter) skip(index int, reason string, ts time.Time, format string, args ...any) {
	f.skipped = append(f.skipped, SkipReason{
		Detail:  fmt.Sprintf(format, args...),
		Index:   index,
		Reason:  reason,
		TsEvent: ts,
	})
}

// acceptTime checks a row's event time. It must be called for rows in response
// order, and only for rows that are otherwise valid, so that the duplicate and
// order checks compare against rows that were actually kept.
func (f *rowFilter) acceptTime(index int, ts time.Time) bool {
	switch {
	case ts.Before(minEventTime) || ts.After(maxEventTime):
		f.skip(index, SkipMalformed, time.Time{}, "event time %d ms is implausible", ts.UnixMilli())
		return false
	case ts.After(f.now.Add(f.futureSlack)):
		f.skip(index, SkipFuture, ts, "event time %s is after now (%s)", ts.Format(time.RFC3339), f.now.Format(time.RFC3339))
		return false
	case !f.last.IsZero() && ts.Equal(f.last):
		f.skip(index, SkipDuplicate, ts, "event time %s repeats the previous row", ts.Format(time.RFC3339))
		return false
	case !f.last.IsZero() && ts.Before(f.last):
		f.skip(index, SkipOutOfOrder, ts, "event time %s is before the previous row's %s", ts.Format(time.RFC3339), f.last.Format(time.RFC3339))
		return false
	case !f.start.IsZero() && ts.Before(f.start), !f.end.IsZero() && ts.After(f.end):
		f.skip(index, SkipOutOfRange, ts, "event time %s is outside the requested range", ts.Format(time.RFC3339))
		return false
	}
	f.last = ts
	return true
}

// ohlcv holds candle values during parsing.
type ohlcv struct {
	open, high, low, close, volume float64
	hasVolume                      bool
}

// check validates a candle and returns the skip reason and detail, or "" when
// the candle is sound.
func (c ohlcv) check() (string, string) {
	for _, v := range []float64{c.open, c.high, c.low, c.close, c.volume} {
		if !finite(v) {
			return SkipNonFinite, "candle has a non-finite value"
		}
	}
	if c.open <= 0 || c.high <= 0 || c.low <= 0 || c.close <= 0 {
		return SkipNonPositive, fmt.Sprintf("candle has a price <= 0 (o=%g h=%g l=%g c=%g)", c.open, c.high, c.low, c.close)
	}
	if c.volume < 0 {
		return SkipInconsistent, fmt.Sprintf("candle volume %g is negative", c.volume)
	}
	if c.low > c.high || c.open > c.high || c.close > c.high || c.open < c.low || c.close < c.low {
		return SkipInconsistent, fmt.Sprintf("candle prices are inconsistent (o=%g h=%g l=%g c=%g)", c.open, c.high, c.low, c.close)
	}
	return "", ""
}

func (c ohlcv) values() map[string]float64 {
	v := map[string]float64{"open": c.open, "high": c.high, "low": c.low, "close": c.close}
	if c.hasVolume {
		v["volume"] = c.volume
	}
	return v
}
