package api

import (
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/crunchnode/crunch-node/internal/config"
)

// reports holds what the report endpoints share: the dependencies, the competition
// configuration (windows, metrics, ranking), the clock (for defaults such as end = now) and
// the in-memory leaderboard.
type reports struct {
	crunch      *config.CrunchConfig
	deps        Deps
	leaderboard *leaderboardCache
	now         func() time.Time
	schema      ReportSchema
}

// registerReports mounts the report endpoints of the CrunchDAO contract
// (reference/report-api-contract.md, crunch-node-python.md §7).
func registerReports(api huma.API, deps Deps) {
	crunch := deps.Config.Crunch
	if crunch == nil {
		// A Config built by hand rather than by config.Load: no windows, no metrics.
		crunch = &config.CrunchConfig{}
	}
	r := &reports{
		crunch:      crunch,
		deps:        deps,
		leaderboard: newLeaderboardCache(deps.Pool, deps.Logger, time.Now, leaderboardCacheTTL),
		now:         time.Now,
		schema:      buildReportSchema(crunch),
	}
	r.registerFeeds(api)
	r.registerLeaderboard(api)
	r.registerModels(api)
	r.registerPredictions(api)
	r.registerSchema(api)
	r.registerSnapshots(api)
}
