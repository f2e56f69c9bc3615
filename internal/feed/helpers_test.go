package feed

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fixture reads a recorded provider response from testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// fixedClock returns a clock stuck at ts.
func fixedClock(ts time.Time) func() time.Time {
	return func() time.Time { return ts }
}

// newServer starts an httptest server that is closed when the test ends.
func newServer(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// serveBody answers every request with status, headers and body.
func serveBody(status int, contentType string, body []byte, headers map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func unix(v int64) time.Time { return time.Unix(v, 0).UTC() }
