package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/dashboard"
)

func fetch(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// assetURL is how index.html refers to an asset: a relative path with a content hash.
var assetURL = regexp.MustCompile(`"static/([a-z]+\.[a-z]+)\?v=([0-9a-f]{16})"`)

func TestHandler(t *testing.T) {
	t.Parallel()
	server := httptest.NewServer(dashboard.Handler())
	t.Cleanup(server.Close)

	resp, index := fetch(t, http.MethodGet, server.URL+"/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	versions := map[string]string{}
	for _, m := range assetURL.FindAllStringSubmatch(index, -1) {
		versions[m[1]] = m[2]
	}
	require.Equal(t, []string{"app.js", "favicon.svg", "style.css"}, sortedKeys(versions))

	t.Run("Index", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/", "/index.html"} {
			resp, body := fetch(t, http.MethodGet, server.URL+path, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
			require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
			require.NotEmpty(t, resp.Header.Get("ETag"))
			require.Equal(t, index, body)
			// Nothing is loaded from elsewhere.
			require.NotContains(t, body, "http://")
			require.NotContains(t, body, "https://")
		}
	})

	t.Run("IndexRevalidates", func(t *testing.T) {
		t.Parallel()
		resp, body := fetch(t, http.MethodGet, server.URL+"/", map[string]string{"If-None-Match": resp.Header.Get("ETag")})
		require.Equal(t, http.StatusNotModified, resp.StatusCode)
		require.Empty(t, body)
	})

	t.Run("AssetsWithVersionAreImmutable", func(t *testing.T) {
		t.Parallel()
		types := map[string]string{
			"app.js":      "text/javascript; charset=utf-8",
			"favicon.svg": "image/svg+xml",
			"style.css":   "text/css; charset=utf-8",
		}
		for name, version := range versions {
			resp, body := fetch(t, http.MethodGet, server.URL+"/static/"+name+"?v="+version, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, name)
			require.Equal(t, types[name], resp.Header.Get("Content-Type"), name)
			require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"), name)
			require.Equal(t, `"`+version+`"`, resp.Header.Get("ETag"), name)
			require.NotEmpty(t, body, name)
		}
	})

	t.Run("AssetsWithoutVersionRevalidate", func(t *testing.T) {
		t.Parallel()
		for _, url := range []string{"/static/app.js", "/static/app.js?v=0123456789abcdef"} {
			resp, _ := fetch(t, http.MethodGet, server.URL+url, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), url)
		}
	})

	t.Run("Head", func(t *testing.T) {
		t.Parallel()
		resp, body := fetch(t, http.MethodHead, server.URL+"/static/style.css", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"))
		require.Empty(t, body)
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/static/missing.js", "/static/", "/elsewhere", "/static/../dashboard.go"} {
			resp, body := fetch(t, http.MethodGet, server.URL+path, nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), path)
			require.Contains(t, body, `"status":404`, path)
		}
	})

	t.Run("OnlyGet", func(t *testing.T) {
		t.Parallel()
		resp, body := fetch(t, http.MethodPost, server.URL+"/", nil)
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		require.Contains(t, body, `"title":"Method Not Allowed"`)
	})

	t.Run("NoExternalReferences", func(t *testing.T) {
		t.Parallel()
		// The page must work offline: no CDN, no web fonts, no remote scripts.
		for name, version := range versions {
			_, body := fetch(t, http.MethodGet, server.URL+"/static/"+name+"?v="+version, nil)
			// The SVG namespace is a name, not a download.
			body = strings.ReplaceAll(body, "http://www.w3.org/2000/svg", "")
			for _, remote := range []string{"http://", "https://", "//cdn", "@import", "url("} {
				require.False(t, strings.Contains(body, remote), "%s refers to %q", name, remote)
			}
		}
	})
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
