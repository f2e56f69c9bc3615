package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// Tier is how much a path is protected.
type Tier int

// The three tiers of DESIGN §8. Public paths are open, read paths need the key only when
// API_READ_AUTH is set, admin paths always need it (once API_KEY is set at all).
const (
	TierPublic Tier = iota
	TierRead
	TierAdmin
)

func (t Tier) String() string {
	return [...]string{"public", "read", "admin"}[t]
}

// Auth classifies paths by prefix and checks API keys. Public prefixes are checked first,
// as in the Python engine, so `/reports/checkpoints/rewards` stays public while the rest
// of `/reports/checkpoints/` is admin.
type Auth struct {
	AdminPrefixes  []string
	PublicPrefixes []string
	ReadAuth       bool
	keyHash        [sha256.Size]byte
	keySet         bool
}

// NewAuth builds the checker; an empty key disables authentication, which is what a local
// development node wants.
func NewAuth(key string, readAuth bool, public, admin []string) *Auth {
	a := &Auth{AdminPrefixes: admin, PublicPrefixes: public, ReadAuth: readAuth}
	if key != "" {
		a.keyHash = sha256.Sum256([]byte(key))
		a.keySet = true
	}
	return a
}

// Enabled reports whether an API key is configured.
func (a *Auth) Enabled() bool { return a.keySet }

// TierOf classifies a request path.
func (a *Auth) TierOf(path string) Tier {
	for _, prefix := range a.PublicPrefixes {
		if strings.HasPrefix(path, prefix) {
			return TierPublic
		}
	}
	for _, prefix := range a.AdminPrefixes {
		if strings.HasPrefix(path, prefix) {
			return TierAdmin
		}
	}
	return TierRead
}

// keyCookie carries the key for browsers: a page opened once with ?api_key= (River UI,
// the dashboard) keeps working for the requests its scripts make, which cannot add
// headers.
const keyCookie = "crunch_api_key"

// requestKey reads the key from X-API-Key, then a Bearer token, then ?api_key=, then the
// cookie set by an earlier ?api_key= visit. It reports whether the key came from the query.
func requestKey(r *http.Request) (string, bool) {
	if key := r.Header.Get("X-API-Key"); key != "" {
		return key, false
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(bearer), false
	}
	if key := r.URL.Query().Get("api_key"); key != "" {
		return key, true
	}
	if cookie, err := r.Cookie(keyCookie); err == nil {
		return cookie.Value, false
	}
	return "", false
}

// Allows reports whether the request may reach its path, and why not. Keys are compared
// as SHA-256 digests in constant time, so neither content nor length leaks through timing.
func (a *Auth) Allows(r *http.Request) (bool, string) {
	ok, reason, _ := a.check(r)
	return ok, reason
}

// check is Allows that also reports a valid key given in the query string.
func (a *Auth) check(r *http.Request) (ok bool, reason string, validQueryKey string) {
	if !a.keySet {
		return true, "", ""
	}
	tier := a.TierOf(r.URL.Path)
	if tier == TierPublic || (tier == TierRead && !a.ReadAuth) {
		return true, "", ""
	}
	key, fromQuery := requestKey(r)
	if key == "" {
		return false, "API key required", ""
	}
	given := sha256.Sum256([]byte(key))
	if subtle.ConstantTimeCompare(given[:], a.keyHash[:]) != 1 {
		return false, "invalid API key", ""
	}
	if fromQuery {
		return true, "", key
	}
	return true, "", ""
}

// Middleware answers 401 with the API's error body when the key is missing or wrong.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, reason, queryKey := a.check(r)
		if !ok {
			writeProblem(w, http.StatusUnauthorized, reason)
			return
		}
		if queryKey != "" {
			http.SetCookie(w, &http.Cookie{
				Name: keyCookie, Value: queryKey, Path: "/", HttpOnly: true,
				SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
			})
		}
		next.ServeHTTP(w, r)
	})
}

// writeProblem writes the same RFC 9457 body that every endpoint error uses, for the few
// responses produced outside an endpoint (auth, unknown routes).
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"title":  http.StatusText(status),
		"status": status,
		"detail": detail,
	})
}
