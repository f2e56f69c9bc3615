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

// requestKey reads the key from X-API-Key, then a Bearer token, then ?api_key=.
func requestKey(r *http.Request) string {
	if key := r.Header.Get("X-API-Key"); key != "" {
		return key
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(bearer)
	}
	return r.URL.Query().Get("api_key")
}

// Allows reports whether the request may reach its path, and why not. Keys are compared
// as SHA-256 digests in constant time, so neither content nor length leaks through timing.
func (a *Auth) Allows(r *http.Request) (bool, string) {
	if !a.keySet {
		return true, ""
	}
	tier := a.TierOf(r.URL.Path)
	if tier == TierPublic || (tier == TierRead && !a.ReadAuth) {
		return true, ""
	}
	key := requestKey(r)
	if key == "" {
		return false, "API key required"
	}
	given := sha256.Sum256([]byte(key))
	if subtle.ConstantTimeCompare(given[:], a.keyHash[:]) != 1 {
		return false, "invalid API key"
	}
	return true, ""
}

// Middleware answers 401 with the API's error body when the key is missing or wrong.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, reason := a.Allows(r); !ok {
			writeProblem(w, http.StatusUnauthorized, reason)
			return
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
