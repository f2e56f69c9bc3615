package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/ranking"
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
	// Scoring is set in processes that run the score role.
	Scoring *Scoring
	// TickCommitted, when set, is told when a tick's predictions have committed
	// (benchmarks measure the hot path with it).
	TickCommitted func(args PredictArgs, at time.Time)
	// Emission builds checkpoint rewards; nil means the configured built-in strategy.
	Emission EmissionBuilder
	// Predicting is set in processes that run the predict role.
	Predicting *Predicting
	// Ranker is the LEADERBOARD_RANKER; nil keeps the built-in ranking by ranking_key.
	Ranker *ranking.Ranker
	// Feeds builds and caches feed providers (feed role).
	Feeds *Feeds
	// partitions remembers the daily partitions known to exist.
	partitions partitionCache
	// windows remembers the predict ticks' last input windows.
	windows windowCache
}

// insertTx enqueues a job in tx through the River client of the running worker.
func (d *Deps) insertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return nil, fmt.Errorf("no River client in context: %w", err)
	}
	return client.InsertTx(ctx, tx, args, opts)
}

// uniqueWhileActive makes a job unique while one like it is waiting or running; a new
// one can be inserted as soon as the previous finished.
var uniqueWhileActive = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
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
	river.AddWorker(workers, &BackfillWorker{deps: deps})
	river.AddWorker(workers, &CheckpointScheduleWorker{deps: deps})
	river.AddWorker(workers, &CheckpointWorker{deps: deps})
	river.AddWorker(workers, &FeedPollWorker{deps: deps})
	river.AddWorker(workers, &LeaderboardRefreshWorker{deps: deps})
	river.AddWorker(workers, &MaintenanceWorker{deps: deps})
	river.AddWorker(workers, &PredictScheduleWorker{deps: deps})
	river.AddWorker(workers, &PredictWorker{deps: deps})
	river.AddWorker(workers, &ScoreWorker{deps: deps})
}

// PeriodicJobs is the schedule. Every working process configures all of it; River runs it
// on the leader only, so each job is enqueued once however many processes run.
func PeriodicJobs(cfg *config.Config) []*river.PeriodicJob {
	jobs := []*river.PeriodicJob{}
	for _, scope := range FeedScopes(cfg) {
		jobs = append(jobs, river.NewPeriodicJob(
			river.PeriodicInterval(cfg.FeedPollInterval()),
			func() (river.JobArgs, *river.InsertOpts) { return FeedPollArgs{FeedScope: scope}, nil },
			&river.PeriodicJobOpts{ID: "feed_poll:" + scope.String(), RunOnStart: true},
		))
	}
	checkpointEvery := min(time.Duration(cfg.CheckpointIntervalSeconds)*time.Second, time.Minute)
	return append(jobs,
		river.NewPeriodicJob(
			river.PeriodicInterval(checkpointEvery),
			func() (river.JobArgs, *river.InsertOpts) { return CheckpointScheduleArgs{}, nil },
			&river.PeriodicJobOpts{ID: "checkpoint_schedule", RunOnStart: true},
		),
		river.NewPeriodicJob(
			river.PeriodicInterval(time.Second),
			func() (river.JobArgs, *river.InsertOpts) { return PredictScheduleArgs{}, nil },
			&river.PeriodicJobOpts{ID: "predict_schedule", RunOnStart: true},
		),
		river.NewPeriodicJob(
			river.PeriodicInterval(cfg.ScoreInterval()),
			func() (river.JobArgs, *river.InsertOpts) { return ScoreArgs{}, nil },
			&river.PeriodicJobOpts{ID: "score", RunOnStart: true},
		),
		river.NewPeriodicJob(
			river.PeriodicInterval(time.Duration(max(cfg.FeedRetentionCheckSeconds, 30))*time.Second),
			func() (river.JobArgs, *river.InsertOpts) { return MaintenanceArgs{}, nil },
			&river.PeriodicJobOpts{ID: "maintenance", RunOnStart: true},
		),
	)
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
		// Insert notifications start a tick at once; the poll bounds the wait of one
		// whose notification River skipped (inserted within the fetch cooldown of
		// another) or lost (the listener reconnecting): River's default is a second.
		queues[QueuePredict] = river.QueueConfig{MaxWorkers: 20, FetchPollInterval: 100 * time.Millisecond}
	}
	if roles.Has(RoleScore) {
		queues[QueueScore] = river.QueueConfig{MaxWorkers: 10}
	}
	return queues
}

// withinRescue caps a job's work slice (how long it works before it returns or yields),
// and the allowance its timeout adds for the page or batch in flight, at a quarter of the
// rescue window each. A timeout is then at most half the window. River never rescues a
// job before its own timeout has passed; the other half of the window is for a job that
// was cancelled at its timeout to wind up, and for clock skew between the leader (whose
// clock the rescuer reads) and the database (which stamped attempted_at), so a job is
// never started again while an earlier attempt still runs, whatever
// JOB_RESCUE_AFTER_SECONDS is.
func (d *Deps) withinRescue(limit time.Duration) time.Duration {
	return min(limit, d.Config.JobRescueAfter()/4)
}

// ClientConfig builds the River configuration for a process. RescueStuckJobsAfter is
// JOB_RESCUE_AFTER_SECONDS: River's rescuer, on the leader, every 30 s, retries a job
// that has been running longer than that and longer than its own timeout, which is how a
// job left running by a killed process is done after all. JobTimeout, the timeout of the
// kinds that set none, is at most half the window for the reason withinRescue gives.
func ClientConfig(deps *Deps, roles Roles) *river.Config {
	workers := river.NewWorkers()
	Register(workers, deps)
	rescueAfter := deps.Config.JobRescueAfter()
	config := &river.Config{
		// A short cooldown keeps the feed-to-predict hop in single milliseconds (River's
		// default of 100 ms would dominate the hot path; reference stack-facts). It must
		// be the client's, not only the predict queue's: River also sends at most one
		// insert notification per queue per client FetchCooldown, so with the default a
		// predict job inserted soon after another (two subjects' feed polls committing
		// together) would not be announced and would wait for the next fetch poll, a
		// second later. The other queues see few jobs; a short cooldown only makes them
		// more responsive.
		FetchCooldown:        2 * time.Millisecond,
		Logger:               deps.Logger.With(slog.String("component", "river")),
		SkipUnknownJobCheck:  true,
		JobTimeout:           min(5*time.Minute, rescueAfter/2),
		RescueStuckJobsAfter: rescueAfter,
	}
	if roles.Works() {
		config.Queues = Queues(roles)
		config.Workers = workers
		config.PeriodicJobs = PeriodicJobs(deps.Config)
	}
	return config
}

// RiverPoolOptions configures River's own pool (a node gives River a pool of its own, so
// job bookkeeping never waits for the application's connections). Its commits are
// asynchronous: each job fetch is a transaction of its own, and waiting for its WAL
// flush cost the feed-to-predict hop 0.4–0.7 ms. Nothing River writes through this pool
// needs more: a crash that loses the last commits leaves the database as it was a moment
// earlier, which crash recovery already handles (a lost fetch runs the job again, a lost
// completion has it rescued and retried, a lost periodic insert is made by the next run),
// and job data is written in the application's transactions, not here.
func RiverPoolOptions() postgres.PoolOptions {
	return postgres.PoolOptions{ApplicationName: "crunch-node river", AsynchronousCommit: true, MaxConns: 10}
}

// riverDriver is the driver type JobCompleteTx needs to know the transaction type.
type riverDriver = riverpgxv5.Driver
