// Package api is the report API: a chi router with typed huma endpoints (which generate
// /openapi.json), the auth tiers, health and Prometheus metrics. Every route is mounted in
// NewHandler; endpoints never write errors themselves, they return them through
// toHTTPError.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/customsql"
	"github.com/crunchnode/crunch-node/internal/dashboard"
	"github.com/crunchnode/crunch-node/internal/telemetry"
)

// Deps are what the endpoints need. Pool is the application's pool; River has its own.
type Deps struct {
	Config  *config.Config
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	Pool    *pgxpool.Pool
	// River enqueues jobs (backfills); nil in processes that only read.
	River   *river.Client[pgx.Tx]
	Version string

	// Warnings returns conditions the node runs with but an operator should fix (for
	// example a scoring function that looks like a stub); /healthz lists them.
	Warnings func() []string
	// Mounts are extra handlers under a path prefix (River UI).
	Mounts map[string]http.Handler
	// CustomSQL are the operator's SQL endpoints, served under /custom; nil for none.
	CustomSQL *customsql.Set
	// Register adds further endpoints; roles that own data add theirs here.
	Register []func(api huma.API)
}

// NewHandler builds the router. The auth middleware runs before routing so that an
// unauthorised caller learns nothing about which paths exist.
func NewHandler(deps Deps) (http.Handler, huma.API) {
	router := chi.NewRouter()
	router.Use(middleware.Recoverer)
	router.Use(deps.Metrics.Middleware)
	auth := NewAuth(deps.Config.APIKey, deps.Config.APIReadAuth, deps.Config.APIPublicPrefixes, deps.Config.APIAdminPrefixes)
	router.Use(auth.Middleware)

	humaConfig := huma.DefaultConfig("crunch-node report API", deps.Version)
	humaConfig.Info.Description = "Leaderboard, models, predictions, feeds, checkpoints and Merkle proofs of a crunch-node."
	// No $schema links in bodies: clients of the Python engine do not expect them, and
	// building them costs time on every request.
	humaConfig.CreateHooks = nil
	humaConfig.DocsPath = "" // served by docsHandler, which needs no CDN
	humaConfig.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"apiKey": {Type: "apiKey", In: "header", Name: "X-API-Key"},
	}
	api := humachi.New(router, humaConfig)

	registerHealth(api, deps)
	registerBackfill(api, deps)
	registerCheckpoints(api, deps)
	registerMerkle(api, deps)
	registerData(api, deps)
	registerDiversity(api, deps)
	registerReports(api, deps)
	registerTiming(api, deps)
	for _, register := range deps.Register {
		register(api)
	}

	router.Get("/docs", docsHandler(deps.Version))
	router.Handle("/metrics", deps.Metrics.Handler())
	dash := dashboard.Handler()
	router.Handle("/", dash)
	router.Handle("/index.html", dash)
	router.Handle("/static/*", dash)
	if deps.CustomSQL != nil {
		opts := customsql.Options{
			MaxRows:          deps.Config.CustomSQLMaxRows,
			StatementTimeout: time.Duration(deps.Config.CustomSQLTimeoutSeconds * float64(time.Second)),
		}
		custom := deps.CustomSQL.Handler(deps.Pool, deps.Logger, opts)
		router.Handle("/custom", custom)
		router.Handle("/custom/*", custom)
		for _, op := range deps.CustomSQL.Operations(opts) {
			api.OpenAPI().AddOperation(op)
		}
	}
	for prefix, handler := range deps.Mounts {
		router.Mount(prefix, handler)
	}
	router.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return router, api
}

// nonNil turns a nil slice into an empty one so lists encode as [] and never as null,
// which some clients of the report API cannot handle.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
