package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	t.Parallel()

	public := []string{"/healthz", "/reports/leaderboard", "/reports/models", "/reports/checkpoints/rewards"}
	admin := []string{"/reports/backfill", "/reports/checkpoints/", "/custom"}

	t.Run("TierOf", func(t *testing.T) {
		t.Parallel()
		auth := NewAuth("k", false, public, admin)
		tests := []struct {
			path string
			want Tier
		}{
			{"/healthz", TierPublic},
			{"/reports/models/global", TierPublic},
			{"/reports/checkpoints/rewards", TierPublic},
			{"/reports/checkpoints", TierRead},
			{"/reports/checkpoints/latest", TierAdmin},
			{"/reports/checkpoints/CKP_1/confirm", TierAdmin},
			{"/reports/predictions", TierRead},
			{"/custom/top_models", TierAdmin},
			{"/reports/backfill/jobs", TierAdmin},
		}
		for _, tt := range tests {
			require.Equal(t, tt.want, auth.TierOf(tt.path), tt.path)
		}
	})

	t.Run("Allows", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name     string
			key      string
			readAuth bool
			path     string
			header   map[string]string
			query    string
			want     bool
			reason   string
		}{
			{name: "NoKeyConfiguredOpensAll", path: "/custom/x", want: true},
			{name: "PublicWithoutKey", key: "k", path: "/healthz", want: true},
			{name: "ReadOpenByDefault", key: "k", path: "/reports/predictions", want: true},
			{name: "ReadNeedsKeyWithReadAuth", key: "k", readAuth: true, path: "/reports/predictions", reason: "API key required"},
			{name: "AdminWithoutKey", key: "k", path: "/reports/checkpoints/latest", reason: "API key required"},
			{name: "AdminWrongKey", key: "k", path: "/custom/x", header: map[string]string{"X-API-Key": "nope"}, reason: "invalid API key"},
			{name: "AdminHeaderKey", key: "k", path: "/custom/x", header: map[string]string{"X-API-Key": "k"}, want: true},
			{name: "AdminBearer", key: "k", path: "/custom/x", header: map[string]string{"Authorization": "Bearer k"}, want: true},
			{name: "AdminQueryKey", key: "k", path: "/custom/x", query: "?api_key=k", want: true},
			{name: "PrefixOfKeyRejected", key: "key", path: "/custom/x", query: "?api_key=ke", reason: "invalid API key"},
			{name: "CookieKey", key: "k", path: "/custom/x", header: map[string]string{"Cookie": "crunch_api_key=k"}, want: true},
			{name: "WrongCookieKey", key: "k", path: "/custom/x", header: map[string]string{"Cookie": "crunch_api_key=x"}, reason: "invalid API key"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				auth := NewAuth(tt.key, tt.readAuth, public, admin)
				r := httptest.NewRequest("GET", tt.path+tt.query, nil)
				for k, v := range tt.header {
					r.Header.Set(k, v)
				}
				ok, reason := auth.Allows(r)
				require.Equal(t, tt.want, ok)
				require.Equal(t, tt.reason, reason)
			})
		}
	})
}

func TestAuthSetsCookieForQueryKey(t *testing.T) {
	t.Parallel()
	auth := NewAuth("k", false, nil, []string{"/riverui"})
	handler := auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/riverui/?api_key=k", nil))
	require.Equal(t, http.StatusNoContent, rec.Code)
	cookies := rec.Result().Cookies()
	require.Len(t, cookies, 1)
	require.Equal(t, "crunch_api_key", cookies[0].Name)
	require.True(t, cookies[0].HttpOnly)

	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/riverui/?api_key=wrong", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Empty(t, rec.Result().Cookies())
}
