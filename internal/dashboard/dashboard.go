// Package dashboard serves the node's own web page at /: the leaderboard, each model's score
// over time, scores per scope, feed health and recent checkpoints, read from the report API
// and refreshed every 10 seconds.
//
// It is plain HTML, CSS and JavaScript embedded in the binary, with hand-drawn SVG charts:
// no build step, no framework and nothing fetched from a CDN, so it works on an offline
// machine and its files can be read as they are served. The page only calls the public
// report endpoints, through paths relative to itself, so it also works behind a reverse
// proxy that serves the node under a path prefix.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var staticFiles embed.FS

// contentTypes are set explicitly rather than looked up, because mime.TypeByExtension
// depends on the host's MIME tables and a wrong script type stops the page.
var contentTypes = map[string]string{
	".css":  "text/css; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// contentSecurityPolicy allows only the node's own scripts, styles and API. Chart colours are
// SVG attributes and CSSOM writes, which need no 'unsafe-inline'.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

type asset struct {
	body        []byte
	contentType string
	hash        string // hex prefix of the content's SHA-256; the cache-busting version
}

type handler struct {
	assets map[string]*asset // by name under static/
	index  *asset
}

// Handler serves the dashboard: GET / (and /index.html) and GET /static/<file>. The page
// is rendered once, with each asset's URL carrying a hash of its content (?v=…): assets
// requested with the current hash are cached for a year as immutable, the page itself is
// revalidated on every load (ETag), so a new binary is picked up at the next reload and
// never mixes old and new files.
func Handler() http.Handler {
	h, err := newHandler(staticFiles)
	if err != nil {
		// The files are embedded at build time; this fails only for a broken build, which
		// the package's tests catch.
		panic(fmt.Sprintf("dashboard: %v", err))
	}
	return h
}

func newHandler(files fs.FS) (*handler, error) {
	h := &handler{assets: map[string]*asset{}}
	err := fs.WalkDir(files, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "static/index.html" {
			return err
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		contentType, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("no content type for %s", name)
		}
		h.assets[strings.TrimPrefix(name, "static/")] = newAsset(body, contentType)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading assets: %w", err)
	}

	source, err := fs.ReadFile(files, "static/index.html")
	if err != nil {
		return nil, fmt.Errorf("reading index.html: %w", err)
	}
	var missing []string
	page, err := template.New("index").Funcs(template.FuncMap{
		"asset": func(name string) string {
			a, ok := h.assets[name]
			if !ok {
				missing = append(missing, name)
				return ""
			}
			return "static/" + name + "?v=" + a.hash
		},
	}).Parse(string(source))
	if err != nil {
		return nil, fmt.Errorf("parsing index.html: %w", err)
	}
	var rendered bytes.Buffer
	if err := page.Execute(&rendered, nil); err != nil {
		return nil, fmt.Errorf("rendering index.html: %w", err)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("index.html names missing assets %v", missing)
	}
	h.index = newAsset(rendered.Bytes(), contentTypes[".html"])
	return h, nil
}

func newAsset(body []byte, contentType string) *asset {
	sum := sha256.Sum256(body)
	return &asset{body: body, contentType: contentType, hash: hex.EncodeToString(sum[:8])}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeProblem(w, http.StatusMethodNotAllowed, "the dashboard only answers GET")
		return
	}
	switch p := r.URL.Path; {
	case p == "/" || p == "/index.html":
		h.serve(w, r, h.index, "no-cache")
	case strings.HasPrefix(p, "/static/"):
		a, ok := h.assets[strings.TrimPrefix(p, "/static/")]
		if !ok {
			writeProblem(w, http.StatusNotFound, "no such file: "+p)
			return
		}
		cache := "no-cache"
		if r.URL.Query().Get("v") == a.hash {
			cache = "public, max-age=31536000, immutable"
		}
		h.serve(w, r, a, cache)
	default:
		writeProblem(w, http.StatusNotFound, "no such endpoint: "+p)
	}
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, a *asset, cacheControl string) {
	header := w.Header()
	header.Set("Cache-Control", cacheControl)
	header.Set("Content-Security-Policy", contentSecurityPolicy)
	header.Set("Content-Type", a.contentType)
	header.Set("ETag", `"`+a.hash+`"`)
	header.Set("Referrer-Policy", "same-origin")
	header.Set("X-Content-Type-Options", "nosniff")
	// ServeContent answers If-None-Match with 304 and HEAD without a body.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// writeProblem writes the RFC 9457 body the rest of the API writes.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"detail": detail,
		"status": status,
		"title":  http.StatusText(status),
	})
}
