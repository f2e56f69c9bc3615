package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// defaultUserAgent identifies us to providers; some refuse anonymous
	// clients and all of them appreciate knowing who to contact.
	defaultUserAgent = "crunch-node-feed/1"

	// maxBodyBytes caps what we read from a provider. Binance's full
	// exchangeInfo is the largest legitimate answer (tens of MB); anything
	// bigger is a broken proxy, not data.
	maxBodyBytes = 64 << 20

	// bodySnippetBytes is how much of an error body we keep for logs.
	bodySnippetBytes = 256
)

// httpGetter performs GET requests with the behaviour every provider needs:
// a User-Agent, a per-request deadline on top of the caller's context, a capped
// body, and status handling that turns 429/418/5xx into [HTTPError] values that
// carry Retry-After.
type httpGetter struct {
	// authorization is the Authorization header value, when the provider
	// has a key.
	authorization string
	client        *http.Client
	now           func() time.Time
	provider      string
	timeout       time.Duration
	// unknown recognises the provider's own "no such subject" answer, which
	// every provider spells differently.
	unknown   func(*HTTPError) bool
	userAgent string
}

// get fetches base+path?query and returns the body of a 2xx answer.
func (g *httpGetter) get(ctx context.Context, base, path string, query url.Values) ([]byte, error) {
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	u := strings.TrimRight(base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", g.userAgent)
	if g.authorization != "" {
		req.Header.Set("Authorization", g.authorization)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		// Prefer the context's error: it says "deadline exceeded" or
		// "canceled" plainly and matches errors.Is(err, context.DeadlineExceeded).
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("requesting %s: %w", redactURL(req.URL), ctxErr)
		}
		return nil, fmt.Errorf("requesting %s: %w", redactURL(req.URL), err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("reading response from %s: %w", redactURL(req.URL), ctxErr)
		}
		return nil, fmt.Errorf("reading response from %s: %w", redactURL(req.URL), err)
	}
	if len(body) > maxBodyBytes {
		return nil, badResponse("response from %s is larger than %d bytes", redactURL(req.URL), maxBodyBytes)
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		he := &HTTPError{
			Body:       snippet(body),
			Provider:   g.provider,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), g.now()),
			StatusCode: resp.StatusCode,
		}
		// Binance (and many others) answer errors as {"code": n, "msg": "..."}.
		var apiErr struct {
			Code    int    `json:"code"`
			Msg     string `json:"msg"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &apiErr) == nil {
			he.Code = apiErr.Code
			he.Message = strings.TrimSpace(apiErr.Msg + apiErr.Message)
		}
		if g.unknown != nil {
			he.unknownSubject = g.unknown(he)
		}
		return nil, he
	}
	if looksLikeHTML(resp.Header.Get("Content-Type"), body) {
		return nil, badResponse("HTML page instead of JSON from %s: %s", redactURL(req.URL), snippet(body))
	}
	return body, nil
}

// looksLikeHTML catches gateways and captive portals that answer 200 with an
// HTML page.
func looksLikeHTML(contentType string, body []byte) bool {
	if strings.Contains(strings.ToLower(contentType), "text/html") {
		return true
	}
	return bytes.HasPrefix(bytes.TrimSpace(body), []byte("<"))
}

// snippet returns the start of body as printable single-line text.
func snippet(body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) > bodySnippetBytes {
		b = b[:bodySnippetBytes]
	}
	s := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	s = strings.Join(strings.Fields(s), " ")
	return s
}

// redactURL drops the query string, which may carry credentials on some hosts,
// from URLs that end up in error messages.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.User = nil
	return c.String()
}
