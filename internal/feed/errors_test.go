package feed

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHTTPErrorMatching(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name          string
		err           *HTTPError
		wantRateLimit bool
		wantRetryable bool
		wantUnavail   bool
		wantUnknown   bool
	}{
		{name: "BadRequest", err: &HTTPError{StatusCode: 400, Code: -1100}},
		{name: "Banned418", err: &HTTPError{StatusCode: http.StatusTeapot}, wantRateLimit: true, wantRetryable: true},
		{name: "BadGateway", err: &HTTPError{StatusCode: 502}, wantUnavail: true, wantRetryable: true},
		{name: "Forbidden", err: &HTTPError{StatusCode: 403}},
		{name: "RateLimited429", err: &HTTPError{StatusCode: 429, RetryAfter: time.Second}, wantRateLimit: true, wantRetryable: true},
		{name: "Timeout408", err: &HTTPError{StatusCode: 408}, wantRetryable: true},
		{name: "UnknownSubject", err: &HTTPError{StatusCode: 400, unknownSubject: true}, wantUnknown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wrapped := fmt.Errorf("fetching klines for BTCUSDT: %w", tt.err)
			require.Equal(t, tt.wantRateLimit, errors.Is(wrapped, ErrRateLimited))
			require.Equal(t, tt.wantUnavail, errors.Is(wrapped, ErrUnavailable))
			require.Equal(t, tt.wantUnknown, errors.Is(wrapped, ErrUnknownSubject))
			require.False(t, errors.Is(wrapped, ErrBadResponse))
			d, ok := RetryAfter(wrapped)
			require.Equal(t, tt.wantRetryable, ok)
			if ok {
				require.Equal(t, tt.err.RetryAfter, d)
			}
			var he *HTTPError
			require.ErrorAs(t, wrapped, &he)
		})
	}

	t.Run("NotHTTP", func(t *testing.T) {
		t.Parallel()
		_, ok := RetryAfter(errors.New("boom"))
		require.False(t, ok)
	})

	t.Run("Message", func(t *testing.T) {
		t.Parallel()
		e := &HTTPError{Provider: "binance", StatusCode: 451, Body: "<html>"}
		require.Contains(t, e.Error(), "HTTP 451")
		require.Contains(t, e.Error(), "data-api.binance.vision")
		e = &HTTPError{Provider: "binance", StatusCode: 429, Code: -1003, Message: "Too many requests", RetryAfter: 7 * time.Second}
		require.Equal(t, "binance: HTTP 429 code -1003: Too many requests (retry after 7s)", e.Error())
	})
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{in: "", want: 0},
		{in: "0", want: 0},
		{in: "-5", want: 0},
		{in: "120", want: 2 * time.Minute},
		{in: "99999999999", want: 24 * time.Hour},
		{in: "garbage", want: 0},
		{in: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{in: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, parseRetryAfter(tt.in, now))
		})
	}
}
