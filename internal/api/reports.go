package api

import (
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// reports holds what the report endpoints share: the dependencies, the clock (for
// defaults such as end = now) and the in-memory leaderboard.
type reports struct {
	deps        Deps
	leaderboard *leaderboardCache
	now         func() time.Time
	schema      ReportSchema
}

// registerReports mounts the report endpoints of the CrunchDAO contract
// (reference/report-api-contract.md, crunch-node-python.md §7).
func registerReports(api huma.API, deps Deps) {
	r := &reports{
		deps:        deps,
		leaderboard: newLeaderboardCache(deps.Pool, deps.Logger, time.Now, leaderboardCacheTTL),
		now:         time.Now,
		schema:      buildReportSchema(deps.Config.Crunch),
	}
	r.registerFeeds(api)
	r.registerLeaderboard(api)
	r.registerModels(api)
	r.registerPredictions(api)
	r.registerSchema(api)
	r.registerSnapshots(api)
}
