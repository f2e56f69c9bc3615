package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"riverqueue.com/riverui"

	"github.com/crunchnode/crunch-node/db"
	"github.com/crunchnode/crunch-node/internal/api"
	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/customsql"
	"github.com/crunchnode/crunch-node/internal/postgres"
	"github.com/crunchnode/crunch-node/internal/ranking"
	"github.com/crunchnode/crunch-node/internal/script"
	"github.com/crunchnode/crunch-node/internal/telemetry"
	"github.com/crunchnode/crunch-node/jobs"
)

func runRun(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "run")
	rolesFlag := fs.String("roles", "all", "comma-separated roles to run: feed, predict, score, report")
	dir := fs.String("workspace", "", "workspace root holding node/ (default: the working directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	roles, err := jobs.ParseRoles(*rolesFlag)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	cfg, err := loadConfig(env, *dir)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderrOr(env.stdout))
	return runNode(ctx, nodeOptions{cfg: cfg, logger: logger, roles: roles, stdout: env.stdout, workspace: *dir})
}

type nodeOptions struct {
	cfg    *config.Config
	logger *slog.Logger
	roles  jobs.Roles
	stdout interface{ Write([]byte) (int, error) }
	// listener, when set, is used instead of listening on REPORT_API_PORT (tests pass
	// one on a free port).
	listener net.Listener
	// ready receives the report API address once the node serves and works jobs.
	ready chan<- string
	// riverClientID names this process in River's tables; empty lets River pick one.
	riverClientID string
	// workspace is the root relative paths in the configuration are resolved from.
	workspace string
}

// runNode runs the roles until ctx ends, then shuts down gracefully: the HTTP server stops
// accepting, River stops fetching and lets running jobs finish within the grace period,
// and only then are the pools closed.
func runNode(ctx context.Context, opts nodeOptions) error {
	cfg, logger := opts.cfg, opts.logger
	metrics := telemetry.New()

	pool, err := postgres.NewPool(ctx, cfg.DatabaseURL, postgres.PoolOptions{ApplicationName: "crunch-node " + opts.roles.String()})
	if err != nil {
		return explainConnectError(err)
	}
	defer pool.Close()
	if err := requireMigrated(ctx, pool); err != nil {
		return err
	}
	riverPool, err := postgres.NewPool(ctx, cfg.DatabaseURL, jobs.RiverPoolOptions())
	if err != nil {
		return explainConnectError(err)
	}
	defer riverPool.Close()

	if err := jobs.SyncConfig(ctx, pool, cfg, logger); err != nil {
		return fmt.Errorf("synchronising the configuration into the database: %w", err)
	}
	warn := &warnings{}
	deps := &jobs.Deps{Config: cfg, Logger: logger, Metrics: metrics, Pool: pool, Feeds: jobs.NewFeeds(cfg)}
	if opts.roles.Has(jobs.RolePredict) {
		predicting, stopModels, err := startPredicting(ctx, cfg, opts.workspace, pool, logger)
		if err != nil {
			return err
		}
		defer stopModels()
		deps.Predicting = predicting
	}
	if opts.roles.Has(jobs.RoleScore) {
		if deps.Scoring, err = buildScoring(ctx, cfg, opts.workspace, logger, warn); err != nil {
			return err
		}
		if deps.Emission, err = jobs.NewEmissionBuilder(cfg.BuildEmission, opts.workspace); err != nil {
			return err
		}
		scriptOpts := script.Options{MaxSteps: script.DefaultMaxSteps, Timeout: script.DefaultTimeout}
		if deps.Ranker, err = ranking.New(resolveRef(cfg.LeaderboardRanker, opts.workspace), scriptOpts); err != nil {
			return err
		}
	}
	riverConfig := jobs.ClientConfig(deps, opts.roles)
	riverConfig.ID = opts.riverClientID
	riverClient, err := river.NewClient(riverpgxv5.New(riverPool), riverConfig)
	if err != nil {
		return fmt.Errorf("creating River client: %w", err)
	}

	var server *http.Server
	serveErr := make(chan error, 1)
	var address string
	if opts.roles.Has(jobs.RoleReport) {
		riverUI, err := riverui.NewHandler(&riverui.HandlerOpts{
			Endpoints:                riverui.NewEndpoints(riverClient, nil),
			JobListHideArgsByDefault: false,
			Logger:                   logger.With(slog.String("component", "riverui")),
			Prefix:                   "/riverui",
		})
		if err != nil {
			return fmt.Errorf("creating River UI: %w", err)
		}
		if err := riverUI.Start(ctx); err != nil {
			return fmt.Errorf("starting River UI: %w", err)
		}
		customSQL := loadCustomSQL(ctx, cfg, opts.workspace, logger)
		handler, _ := api.NewHandler(api.Deps{
			CustomSQL: customSQL,
			Mounts:    map[string]http.Handler{"/riverui": riverUI},
			Config:    cfg,
			Logger:    logger,
			Metrics:   metrics,
			Pool:      pool,
			River:     riverClient,
			Version:   Version,
			Warnings:  warn.list,
		})
		listener := opts.listener
		if listener == nil {
			addr := net.JoinHostPort(cfg.ReportAPIHost, strconv.Itoa(cfg.ReportAPIPort))
			if listener, err = net.Listen("tcp", addr); err != nil {
				return fmt.Errorf("listening on %s (REPORT_API_PORT): %w", addr, err)
			}
		}
		address = listener.Addr().String()
		server = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() { serveErr <- server.Serve(listener) }()
		if cfg.APIKey == "" {
			logger.WarnContext(ctx, "API_KEY is not set: admin endpoints are open; set it before exposing the node")
		}
	}

	if opts.roles.Works() {
		stopEvents := subscribeJobMetrics(riverClient, metrics)
		defer stopEvents()
		if err := riverClient.Start(ctx); err != nil {
			return fmt.Errorf("starting River: %w", err)
		}
	}
	logger.InfoContext(ctx, "Node started", slog.String("roles", opts.roles.String()),
		slog.String("version", Version), slog.String("report_api", address))
	if opts.ready != nil {
		opts.ready <- address
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving the report API: %w", err)
		}
	}

	grace := time.Duration(cfg.ShutdownGraceSeconds) * time.Second
	logger.Info("Node stopping", slog.Duration("grace", grace))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	var errs []error
	if server != nil {
		if err := server.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("stopping the report API: %w", err))
		}
	}
	if opts.roles.Works() {
		if err := riverClient.Stop(shutdownCtx); err != nil {
			// Jobs still running after the grace period are cancelled; River retries them.
			logger.Warn("Jobs did not finish in the grace period; cancelling them", slog.String("error", err.Error()))
			cancelCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = riverClient.StopAndCancel(cancelCtx)
			cancelStop()
		}
	}
	logger.Info("Node stopped")
	return errors.Join(errs...)
}

// requireMigrated refuses to run against a database that `migrate` has not brought up to
// date, rather than failing later on a missing table.
func requireMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, db.Migrations(), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	pending, err := provider.HasPending(ctx)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("checking migrations: %w", err)
	}
	if pending || err != nil {
		return errors.New("the database is not migrated: run `crunch-node migrate` first")
	}
	return nil
}

// subscribeJobMetrics feeds River's job events into the Prometheus counters.
func subscribeJobMetrics(client *river.Client[pgx.Tx], metrics *telemetry.Metrics) func() {
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed)
	go func() {
		for event := range events {
			kind := event.Job.Kind
			metrics.JobsFinished.WithLabelValues(kind, cmp.Or(string(event.Kind), "unknown")).Inc()
			if event.JobStats != nil {
				metrics.JobDuration.WithLabelValues(kind).Observe(event.JobStats.RunDuration.Seconds())
			}
		}
	}()
	return cancel
}

// loadCustomSQL reads the operator's SQL endpoints. A bad file is logged with its name and
// line and left out; the others are served.
func loadCustomSQL(ctx context.Context, cfg *config.Config, dir string, logger *slog.Logger) *customsql.Set {
	path := cfg.APIRoutesDir
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	set, errs := customsql.Load(path)
	for _, err := range errs {
		logger.ErrorContext(ctx, "Custom SQL endpoint not loaded", slog.String("error", err.Error()))
	}
	if set != nil && len(set.Endpoints()) > 0 {
		logger.InfoContext(ctx, "Custom SQL endpoints loaded", slog.String("dir", path), slog.Int("count", len(set.Endpoints())))
	}
	return set
}
