package feed

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Provider errors wrap or match one of these so the job layer
// can count and log failures by class with errors.Is, without knowing which
// provider produced them.
var (
	// ErrBadResponse means the provider answered with something we cannot use
	// as a whole: malformed JSON, an HTML error page, a wrong shape, an
	// oversized body.
	ErrBadResponse = errors.New("bad response from feed provider")

	// ErrRateLimited means the provider refused the request because of its
	// rate limit (HTTP 429) or has banned us for a while (Binance's HTTP 418).
	// Use [RetryAfter] to learn how long to wait.
	ErrRateLimited = errors.New("rate limited by feed provider")

	// ErrUnavailable means the provider or a gateway in front of it failed
	// (HTTP 5xx). It is worth retrying later.
	ErrUnavailable = errors.New("feed provider unavailable")

	// ErrUnknownSubject means the provider does not know the subject (symbol,
	// pair or feed id). Retrying will not help; the configuration is wrong.
	ErrUnknownSubject = errors.New("unknown subject")

	// ErrUnsupported means the provider cannot serve the requested kind or
	// granularity.
	ErrUnsupported = errors.New("unsupported by feed provider")
)

// HTTPError is a non-success HTTP answer from a provider. It matches
// [ErrRateLimited] for 429 and 418, [ErrUnavailable] for 5xx and
// [ErrUnknownSubject] when the provider says so (Binance code -1121, Hermes
// 404), so callers can use errors.Is and still read the details with errors.As.
type HTTPError struct {
	// Body is the start of the response body, for logs.
	Body string
	// Code is the provider's own error code when it sent one (Binance's
	// negative codes), else 0.
	Code int
	// Message is the provider's error message when it sent one.
	Message string
	// Provider names the provider, for messages.
	Provider string
	// RetryAfter is how long the server asked us to wait (Retry-After header),
	// or 0 when it did not say.
	RetryAfter time.Duration
	// StatusCode is the HTTP status.
	StatusCode int
	// unknownSubject is set by the provider that knows how to recognise the
	// "no such symbol" answer in its own dialect.
	unknownSubject bool
}

// Error implements error.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d", e.Provider, e.StatusCode)
	if e.Code != 0 {
		fmt.Fprintf(&b, " code %d", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	} else if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.StatusCode == http.StatusUnavailableForLegalReasons {
		b.WriteString(" (region refused; for Binance set FEED_OPT_base_url=https://data-api.binance.vision)")
	}
	return b.String()
}

// Is matches the sentinel errors by status class.
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusTeapot
	case ErrUnavailable:
		return e.StatusCode >= 500
	case ErrUnknownSubject:
		return e.unknownSubject
	}
	return false
}

// Retryable reports whether the same request may succeed later: rate limits and
// server errors are, rejected requests are not.
func (e *HTTPError) Retryable() bool {
	return e.Is(ErrRateLimited) || e.Is(ErrUnavailable) || e.StatusCode == http.StatusRequestTimeout
}

// RetryAfter returns how long the provider asked the caller to wait, when err
// is a rate limit or an outage. The boolean is false for errors that are not
// worth retrying; a true result with a zero duration means "retry, with your
// own backoff".
func RetryAfter(err error) (time.Duration, bool) {
	var he *HTTPError
	if errors.As(err, &he) && he.Retryable() {
		return he.RetryAfter, true
	}
	return 0, false
}

// parseRetryAfter reads a Retry-After header, which is either a number of
// seconds or an HTTP date. Nonsense and dates in the past give 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		// A day is far beyond any real ban; clamp so a garbage header cannot
		// overflow the duration or park a worker forever.
		return time.Duration(min(secs, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}

// badResponse wraps ErrBadResponse with a reason.
func badResponse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadResponse, fmt.Sprintf(format, args...))
}
