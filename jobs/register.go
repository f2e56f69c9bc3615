package jobs

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/telemetry"
)

// Deps are the dependencies every worker may use. Workers receive a pointer so that parts
// created after the River client (the model runner, for example) can be filled in before
// the client starts.
type Deps struct {
	Config  *config.Config
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	// Pool is the application's pool; River's own pool is separate so that job fetching
	// and leader election never wait behind application queries.
	Pool *pgxpool.Pool
	// Now is the clock; nil means time.Now. Tests pin it.
	Now func() time.Time
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Register adds every worker. Every process registers every kind, whatever its roles, so
// that whichever process is River's leader can schedule and rescue any job; roles decide
// only which queues a process works.
func Register(workers *river.Workers, deps *Deps) {
	river.AddWorker(workers, &LeaderboardRefreshWorker{deps: deps})
	river.AddWorker(workers, &MaintenanceWorker{deps: deps})
}

// PeriodicJobs is the schedule. Every working process configures all of it; River runs it
// on the leader only, so each job is enqueued once however many processes run.
func PeriodicJobs(cfg *config.Config) []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(
			river.PeriodicInterval(time.Duration(max(cfg.FeedRetentionCheckSeconds, 30))*time.Second),
			func() (river.JobArgs, *river.InsertOpts) { return MaintenanceArgs{}, nil },
			&river.PeriodicJobOpts{ID: "maintenance", RunOnStart: true},
		),
	}
}

// Queues returns the queues a process with these roles works. The maintenance queue is
// worked by every working process so housekeeping never depends on one role being up.
func Queues(roles Roles) map[string]river.QueueConfig {
	queues := map[string]river.QueueConfig{}
	if !roles.Works() {
		return queues
	}
	queues[QueueMaintenance] = river.QueueConfig{MaxWorkers: 2}
	if roles.Has(RoleFeed) {
		queues[QueueFeed] = river.QueueConfig{MaxWorkers: 20}
	}
	if roles.Has(RolePredict) {
		// A short cooldown keeps the feed-to-predict hop in single milliseconds (River's
		// default of 100 ms would dominate the hot path; reference stack-facts).
		queues[QueuePredict] = river.QueueConfig{MaxWorkers: 20, FetchCooldown: 2 * time.Millisecond}
	}
	if roles.Has(RoleScore) {
		queues[QueueScore] = river.QueueConfig{MaxWorkers: 10}
	}
	return queues
}

// ClientConfig builds the River configuration for a process.
func ClientConfig(deps *Deps, roles Roles) *river.Config {
	workers := river.NewWorkers()
	Register(workers, deps)
	config := &river.Config{
		Logger:               deps.Logger.With(slog.String("component", "river")),
		SkipUnknownJobCheck:  true,
		JobTimeout:           5 * time.Minute,
		RescueStuckJobsAfter: 10 * time.Minute,
	}
	if roles.Works() {
		config.Queues = Queues(roles)
		config.Workers = workers
		config.PeriodicJobs = PeriodicJobs(deps.Config)
	}
	return config
}

// riverDriver is the driver type JobCompleteTx needs to know the transaction type.
type riverDriver = riverpgxv5.Driver
