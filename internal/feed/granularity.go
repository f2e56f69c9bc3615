package feed

import (
	"fmt"
	"strconv"
	"time"
)

// maxGranularity bounds granularities to one day: buckets are aligned to the
// Unix epoch, which is midnight UTC, so every granularity up to a day lines up
// with the calendar the way exchanges align their own candles.
const maxGranularity = 24 * time.Hour

// ParseGranularity turns a granularity such as 1s, 1m, 5m, 15m, 1h or 1d into a
// duration. The form is a positive integer followed by one of s, m, h or d.
// Anything else, including Go durations like "1m30s" and Binance's "1M" (a
// calendar month, which has no fixed length), is an error that names the input,
// because a silently defaulted granularity (the Python engine mapped unknown
// values to 1m) stores data under the wrong key.
func ParseGranularity(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("parsing granularity %q: want a number and a unit (s, m, h, d), like 1m", s)
	}
	num, unit := s[:len(s)-1], s[len(s)-1]
	var scale time.Duration
	switch unit {
	case 's':
		scale = time.Second
	case 'm':
		scale = time.Minute
	case 'h':
		scale = time.Hour
	case 'd':
		scale = 24 * time.Hour
	default:
		return 0, fmt.Errorf("parsing granularity %q: unknown unit %q, want s, m, h or d", s, string(unit))
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("parsing granularity %q: %q is not a positive integer", s, num)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("parsing granularity %q: %q is not a positive integer", s, num)
	}
	if n > int64(maxGranularity/scale) {
		return 0, fmt.Errorf("parsing granularity %q: longer than the maximum of 1d", s)
	}
	return time.Duration(n) * scale, nil
}

// FloorTime returns the start of the bucket of width step that contains t, in
// UTC. Buckets are aligned to the Unix epoch, like exchange candles.
func FloorTime(t time.Time, step time.Duration) time.Time {
	t = t.UTC()
	if step <= 0 {
		return t
	}
	ns := t.UnixNano()
	rem := ns % int64(step)
	if rem < 0 {
		rem += int64(step)
	}
	return time.Unix(0, ns-rem).UTC()
}

// ceilTime returns the start of the first bucket that begins at or after t.
func ceilTime(t time.Time, step time.Duration) time.Time {
	f := FloorTime(t, step)
	if f.Before(t) {
		return f.Add(step)
	}
	return f
}
