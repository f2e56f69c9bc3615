// Package config builds the one typed, validated Config a process runs with, from three
// layers: environment variables (the Python engine's names), node/.local.env (only for
// variables the environment leaves unset), and node/config/crunch_config.yaml (what the
// competition is; CRUNCH_CONFIG overrides the path). A bad value stops the process with a
// message that names the variable or field and where it came from.
package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
)

// Config is everything a crunch-node process needs to know. Fields tagged `secret` are
// redacted when the configuration is printed.
type Config struct {
	// API_KEY protects the admin tier, and the read tier when APIReadAuth is set.
	APIKey            string   `env:"API_KEY"             secret:"true"`
	APIAdminPrefixes  []string `env:"API_ADMIN_PREFIXES"  envDefault:"/reports/backfill,/reports/checkpoints/,/custom,/riverui,/data/backfill/export"`
	APIPublicPrefixes []string `env:"API_PUBLIC_PREFIXES" envDefault:"/healthz,/info,/reports/schema,/reports/leaderboard,/reports/models,/reports/feeds,/reports/diversity,/reports/ensemble,/reports/checkpoints/rewards,/docs,/openapi.json,/openapi.yaml,/metrics,/static"`
	APIReadAuth       bool     `env:"API_READ_AUTH"`
	// APIRoutesDir holds custom SQL endpoints (*.sql), served under /custom.
	APIRoutesDir string `env:"API_ROUTES_DIR" envDefault:"node/api"`
	// CustomSQLMaxRows and CustomSQLTimeoutSeconds bound every custom SQL request.
	CustomSQLMaxRows        int     `env:"CUSTOM_SQL_MAX_ROWS"        envDefault:"1000"`
	CustomSQLTimeoutSeconds float64 `env:"CUSTOM_SQL_TIMEOUT_SECONDS" envDefault:"5"`

	BackfillDataDir string `env:"BACKFILL_DATA_DIR" envDefault:"data/backfill"`

	CheckpointIntervalSeconds int `env:"CHECKPOINT_INTERVAL_SECONDS" envDefault:"604800"`

	ComputeProviderPubkey string `env:"COMPUTE_PROVIDER_PUBKEY"`
	// CrunchConfigPath is the competition file; empty means auto-discovery, then the
	// embedded default.
	CrunchConfigPath   string `env:"CRUNCH_CONFIG"`
	CrunchID           string `env:"CRUNCH_ID"     envDefault:"starter-challenge"`
	CrunchPubkey       string `env:"CRUNCH_PUBKEY"`
	DataProviderPubkey string `env:"DATA_PROVIDER_PUBKEY"`

	// DatabaseURL wins; without it the URL is built from the POSTGRES_* variables, and
	// without those it is the local default.
	DatabaseURL      string `env:"DATABASE_URL"      secret:"url"`
	PostgresDB       string `env:"POSTGRES_DB"`
	PostgresHost     string `env:"POSTGRES_HOST"`
	PostgresPassword string `env:"POSTGRES_PASSWORD" secret:"true"`
	PostgresPort     int    `env:"POSTGRES_PORT"     envDefault:"5432"`
	PostgresUser     string `env:"POSTGRES_USER"`

	FeedBackfillMinutes       int      `env:"FEED_BACKFILL_MINUTES"        envDefault:"180"`
	FeedCandlesWindow         int      `env:"FEED_CANDLES_WINDOW"          envDefault:"120"`
	FeedGranularity           string   `env:"FEED_GRANULARITY"`
	FeedKind                  string   `env:"FEED_KIND"`
	FeedPollSeconds           float64  `env:"FEED_POLL_SECONDS"            envDefault:"5"`
	FeedProvider              string   `env:"FEED_PROVIDER"`
	FeedRecordTTLDays         int      `env:"FEED_RECORD_TTL_DAYS"`
	FeedRetentionCheckSeconds int      `env:"FEED_RETENTION_CHECK_SECONDS"`
	FeedSource                string   `env:"FEED_SOURCE"`
	FeedSubjects              []string `env:"FEED_SUBJECTS"`

	// Operator callables: a built-in name or path/file.star:function. They win over the
	// callables section of crunch_config.yaml.
	BuildEmission            string `env:"BUILD_EMISSION"`
	InferenceInputBuilder    string `env:"INFERENCE_INPUT_BUILDER"`
	InferenceOutputValidator string `env:"INFERENCE_OUTPUT_VALIDATOR"`
	LeaderboardRanker        string `env:"LEADERBOARD_RANKER"`
	ModelScoreAggregator     string `env:"MODEL_SCORE_AGGREGATOR"`
	ResolveGroundTruth       string `env:"RESOLVE_GROUND_TRUTH"`
	ScoringFunction          string `env:"SCORING_FUNCTION"`

	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`
	LogLevel  string `env:"LOG_LEVEL"  envDefault:"info"`

	ModelBaseClassname        string  `env:"MODEL_BASE_CLASSNAME"          envDefault:"cruncher.ModelBaseClass"`
	ModelRunnerNodeHost       string  `env:"MODEL_RUNNER_NODE_HOST"        envDefault:"model-orchestrator"`
	ModelRunnerNodePort       int     `env:"MODEL_RUNNER_NODE_PORT"        envDefault:"9091"`
	ModelRunnerTimeoutSeconds float64 `env:"MODEL_RUNNER_TIMEOUT_SECONDS"  envDefault:"60"`
	GatewayCertDir            string  `env:"GATEWAY_CERT_DIR"`
	SecureCertDir             string  `env:"SECURE_CERT_DIR"`
	// ModelSource picks where models come from: orchestrator (CrunchDAO's WebSocket),
	// static (MODELS_FILE lists host:port), or local (MODELS_FILE, hosts started here).
	ModelSource string `env:"MODEL_SOURCE" envDefault:"orchestrator"`
	ModelsFile  string `env:"MODELS_FILE"  envDefault:"node/config/models.dev.yml"`

	Network string `env:"NETWORK" envDefault:"devnet"`

	ReportAPIHost string `env:"REPORT_API_HOST"`
	ReportAPIPort int    `env:"REPORT_API_PORT" envDefault:"8000"`

	ScoreIntervalSeconds  int `env:"SCORE_INTERVAL_SECONDS"`
	SnapshotPeriodSeconds int `env:"SNAPSHOT_PERIOD_SECONDS"`

	// JobRescueAfterSeconds is how long a job may stay running before River's rescuer
	// takes it for abandoned and retries it: how long a job left running by a killed
	// process (kill -9, OOM, power loss) waits before another process picks it up. Every
	// job's timeout and work slice is derived to end well inside it (jobs.ClientConfig),
	// so a cancelled job has time to wind up before it could be started again. The
	// predict job's timeout is the one not derived from it, so the window must exceed
	// that: see PredictJobTimeout.
	// Unset, it is the predict job's timeout plus a minute (190 s with the default model
	// timeout): short, because a job kind that is unique while running (a feed's poll,
	// the score run) cannot run again until its killed copy is rescued.
	JobRescueAfterSeconds int `env:"JOB_RESCUE_AFTER_SECONDS"`

	// ShutdownGraceSeconds bounds how long running jobs may finish after SIGTERM.
	ShutdownGraceSeconds int `env:"SHUTDOWN_GRACE_SECONDS" envDefault:"8"`

	// FeedOptions are the FEED_OPT_<NAME> values, keyed by the lower-cased name.
	FeedOptions map[string]string `env:"-"`
	// Crunch is the parsed competition file.
	Crunch *CrunchConfig `env:"-"`
	// Sources says where each variable that was set came from (environment or a file),
	// so validation errors can say what to fix.
	Sources map[string]string `env:"-" json:"-"`
}

// Options says where Load looks for files. The zero value uses the standard locations
// relative to the working directory.
type Options struct {
	// Dir is the workspace root holding node/; empty means the working directory.
	Dir string
	// Defaults are variable values used when neither the environment nor
	// node/.local.env sets them (`crunch-node dev` uses them for its local setup).
	Defaults map[string]string
	// DefaultCrunchYAML replaces the embedded competition when no crunch_config.yaml
	// is found.
	DefaultCrunchYAML []byte
}

// LocalEnvFile and DefaultCrunchConfigFile are the standard locations, relative to the
// workspace root.
const (
	LocalEnvFile            = "node/.local.env"
	DefaultCrunchConfigFile = "node/config/crunch_config.yaml"
)

// aliases are older names the Python engine also read; the first name wins when both are set.
var aliases = map[string]string{
	"FEED_ASSETS":                    "FEED_SUBJECTS",
	"MARKET_RECORD_TTL_DAYS":         "FEED_RECORD_TTL_DAYS",
	"MARKET_RETENTION_CHECK_SECONDS": "FEED_RETENTION_CHECK_SECONDS",
}

// Load builds the configuration from getenv (the real environment), the workspace's
// node/.local.env and its crunch_config.yaml, and validates it.
func Load(getenv func(string) string, opts Options) (*Config, error) {
	lookup, sources, err := layeredEnv(getenv, opts)
	if err != nil {
		return nil, err
	}

	cfg := &Config{Sources: sources}
	environment := map[string]string{}
	params, err := env.GetFieldParams(cfg)
	if err != nil {
		return nil, fmt.Errorf("reading config fields: %w", err)
	}
	for _, p := range params {
		if v, ok := lookup(p.Key); ok {
			environment[p.Key] = v
		}
	}
	for alias, name := range aliases {
		if _, set := environment[name]; set {
			continue
		}
		if v, ok := lookup(alias); ok {
			environment[name] = v
			sources[name] = sources[alias]
		}
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environment}); err != nil {
		return nil, cfg.explainParseError(err, environment)
	}
	cfg.FeedSubjects = trimAll(cfg.FeedSubjects)
	cfg.APIPublicPrefixes = trimAll(cfg.APIPublicPrefixes)
	cfg.APIAdminPrefixes = trimAll(cfg.APIAdminPrefixes)

	if err := cfg.loadCrunch(opts); err != nil {
		return nil, err
	}
	cfg.resolveFeed()
	cfg.FeedOptions = feedOptions(lookup, cfg.FeedSubjects)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// layeredEnv returns a lookup that prefers the real environment and falls back to
// node/.local.env, plus where each value came from.
func layeredEnv(getenv func(string) string, opts Options) (func(string) (string, bool), map[string]string, error) {
	path := joinDir(opts.Dir, LocalEnvFile)
	file := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		if file, err = godotenv.UnmarshalBytes(data); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	sources := map[string]string{}
	lookup := func(key string) (string, bool) {
		if v := getenv(key); v != "" {
			sources[key] = "environment"
			return v, true
		}
		if v, ok := file[key]; ok && v != "" {
			sources[key] = path
			return v, true
		}
		if v, ok := opts.Defaults[key]; ok && v != "" {
			sources[key] = "default"
			return v, true
		}
		return "", false
	}
	return lookup, sources, nil
}

func joinDir(dir, path string) string {
	if dir == "" || strings.HasPrefix(path, "/") {
		return path
	}
	return strings.TrimSuffix(dir, "/") + "/" + path
}

func (c *Config) loadCrunch(opts Options) error {
	path := c.CrunchConfigPath
	if path == "" {
		candidate := joinDir(opts.Dir, DefaultCrunchConfigFile)
		if _, err := os.Stat(candidate); err == nil {
			path = candidate
		}
	} else if !strings.HasPrefix(path, "/") {
		path = joinDir(opts.Dir, path)
	}
	var crunch *CrunchConfig
	var err error
	if path == "" && opts.DefaultCrunchYAML != nil {
		crunch, err = ParseCrunchConfig(opts.DefaultCrunchYAML)
		if err != nil {
			err = fmt.Errorf("built-in development config: %w", err)
		}
	} else {
		crunch, err = LoadCrunchConfig(path)
	}
	if err != nil {
		return err
	}
	c.Crunch = crunch
	c.CrunchConfigPath = path
	return nil
}

// resolveFeed merges the feed settings: FEED_* variables win over crunch_config.yaml, which
// wins over the Python engine's defaults.
func (c *Config) resolveFeed() {
	f := c.Crunch.Feed
	c.FeedSource = cmp.Or(c.FeedSource, c.FeedProvider, f.Source, "binance")
	c.FeedProvider = cmp.Or(c.FeedProvider, c.FeedSource)
	if len(c.FeedSubjects) == 0 {
		c.FeedSubjects = f.Subjects
	}
	if len(c.FeedSubjects) == 0 {
		c.FeedSubjects = []string{"BTCUSDT"}
	}
	c.FeedKind = cmp.Or(c.FeedKind, f.Kind, "candle")
	c.FeedGranularity = cmp.Or(c.FeedGranularity, f.Granularity, "1m")
	c.FeedRecordTTLDays = cmp.Or(c.FeedRecordTTLDays, 90)
	c.FeedRetentionCheckSeconds = cmp.Or(c.FeedRetentionCheckSeconds, 3600)
	c.ScoreIntervalSeconds = cmp.Or(c.ScoreIntervalSeconds, min(60, c.CheckpointIntervalSeconds))
	if c.ModelRunnerTimeoutSeconds > 0 {
		c.JobRescueAfterSeconds = cmp.Or(c.JobRescueAfterSeconds, int(math.Ceil((c.PredictJobTimeout() + time.Minute).Seconds())))
	}
	c.SnapshotPeriodSeconds = cmp.Or(c.SnapshotPeriodSeconds, c.Crunch.Aggregation.SnapshotPeriod.Seconds())
	c.ScoringFunction = cmp.Or(c.ScoringFunction, c.Crunch.Scoring.Function)
	cl := c.Crunch.Callables
	c.BuildEmission = cmp.Or(c.BuildEmission, cl.BuildEmission, c.Crunch.Emission.Strategy)
	c.InferenceInputBuilder = cmp.Or(c.InferenceInputBuilder, cl.InferenceInputBuilder)
	c.InferenceOutputValidator = cmp.Or(c.InferenceOutputValidator, cl.InferenceOutputValidator)
	c.LeaderboardRanker = cmp.Or(c.LeaderboardRanker, cl.LeaderboardRanker)
	c.ModelScoreAggregator = cmp.Or(c.ModelScoreAggregator, cl.ModelScoreAggregator)
	c.ResolveGroundTruth = cmp.Or(c.ResolveGroundTruth, cl.ResolveGroundTruth)
	c.CrunchPubkey = cmp.Or(c.CrunchPubkey, c.Crunch.Emission.CrunchPubkey)
	c.ComputeProviderPubkey = cmp.Or(c.ComputeProviderPubkey, c.Crunch.Emission.ComputeProvider)
	c.DataProviderPubkey = cmp.Or(c.DataProviderPubkey, c.Crunch.Emission.DataProvider)
	if c.DatabaseURL == "" {
		c.DatabaseURL = c.postgresURL()
	}
}

// postgresURL builds a URL from POSTGRES_*; with none of them set it is the local default
// that `make run` and the tests use.
func (c *Config) postgresURL() string {
	u := url.URL{
		Scheme:   "postgres",
		Host:     fmt.Sprintf("%s:%d", cmp.Or(c.PostgresHost, "127.0.0.1"), c.PostgresPort),
		Path:     "/" + cmp.Or(c.PostgresDB, "crunch_node"),
		RawQuery: "sslmode=disable",
	}
	user := cmp.Or(c.PostgresUser, "postgres")
	if c.PostgresPassword != "" {
		u.User = url.UserPassword(user, c.PostgresPassword)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// feedOptions reads FEED_OPT_<NAME> for the option names providers know, plus a feed id per
// configured subject (FEED_OPT_FEED_ID_<SUBJECT>), keyed lower-case as the Python engine did.
// Only declared names are read because the environment is reached through getenv alone.
func feedOptions(lookup func(string) (string, bool), subjects []string) map[string]string {
	names := []string{
		"api_key", "base_url", "benchmarks_url", "depth_limit", "drift", "hermes_url",
		"history_url", "poll_seconds", "seed", "start_price", "timeout_seconds", "volatility",
	}
	for _, s := range subjects {
		names = append(names, "feed_id_"+strings.ToLower(s))
	}
	opts := map[string]string{}
	for _, name := range names {
		for _, key := range []string{"FEED_OPT_" + strings.ToUpper(name), "FEED_OPT_" + name} {
			if v, ok := lookup(key); ok {
				opts[name] = v
				break
			}
		}
	}
	return opts
}

func trimAll(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// explainParseError rewrites the env library's errors, which name Go fields, into messages
// that name the variable and where its value came from.
func (c *Config) explainParseError(err error, environment map[string]string) error {
	var aggregate env.AggregateError
	if !errors.As(err, &aggregate) {
		return fmt.Errorf("reading environment: %w", err)
	}
	var errs []error
	t := reflect.TypeFor[Config]()
	for _, e := range aggregate.Errors {
		var parseErr env.ParseError
		if errors.As(e, &parseErr) {
			if field, ok := t.FieldByName(parseErr.Name); ok {
				key := field.Tag.Get("env")
				errs = append(errs, fmt.Errorf("%s: %s: %q is not a valid %s", c.source(key), key, environment[key], parseErr.Type))
				continue
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

func (c *Config) source(key string) string {
	return cmp.Or(c.Sources[key], "environment")
}

// Validate checks the values that would otherwise fail later in a confusing way.
func (c *Config) Validate() error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", c.source(key), key, fmt.Sprintf(format, args...)))
	}
	if c.ReportAPIPort < 1 || c.ReportAPIPort > 65535 {
		fail("REPORT_API_PORT", "must be a port number, got %d", c.ReportAPIPort)
	}
	if c.FeedPollSeconds <= 0 {
		fail("FEED_POLL_SECONDS", "must be positive, got %g", c.FeedPollSeconds)
	}
	if c.FeedCandlesWindow < 1 {
		fail("FEED_CANDLES_WINDOW", "must be at least 1, got %d", c.FeedCandlesWindow)
	}
	if c.FeedBackfillMinutes < 0 {
		fail("FEED_BACKFILL_MINUTES", "must not be negative, got %d", c.FeedBackfillMinutes)
	}
	if c.FeedRecordTTLDays < 1 {
		fail("FEED_RECORD_TTL_DAYS", "must be at least 1, got %d", c.FeedRecordTTLDays)
	}
	if c.ScoreIntervalSeconds < 1 {
		fail("SCORE_INTERVAL_SECONDS", "must be at least 1, got %d", c.ScoreIntervalSeconds)
	}
	if c.CheckpointIntervalSeconds < 1 {
		fail("CHECKPOINT_INTERVAL_SECONDS", "must be at least 1, got %d", c.CheckpointIntervalSeconds)
	}
	if c.SnapshotPeriodSeconds < 1 {
		fail("SNAPSHOT_PERIOD_SECONDS", "must be at least 1, got %d", c.SnapshotPeriodSeconds)
	}
	if c.ModelRunnerTimeoutSeconds <= 0 {
		fail("MODEL_RUNNER_TIMEOUT_SECONDS", "must be positive, got %g", c.ModelRunnerTimeoutSeconds)
	}
	if !slices.Contains([]string{"orchestrator", "static", "local"}, c.ModelSource) {
		fail("MODEL_SOURCE", "must be orchestrator, static or local, got %q", c.ModelSource)
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		fail("LOG_FORMAT", "must be text or json, got %q", c.LogFormat)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.LogLevel)) {
		fail("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if !slices.Contains([]string{"candle", "tick"}, c.FeedKind) {
		fail("FEED_KIND", "must be candle or tick, got %q", c.FeedKind)
	}
	if _, err := url.Parse(c.DatabaseURL); err != nil || !strings.HasPrefix(c.DatabaseURL, "postgres") {
		fail("DATABASE_URL", "must be a postgres:// URL")
	}
	if c.CustomSQLMaxRows < 1 {
		fail("CUSTOM_SQL_MAX_ROWS", "must be at least 1, got %d", c.CustomSQLMaxRows)
	}
	if c.CustomSQLTimeoutSeconds <= 0 {
		fail("CUSTOM_SQL_TIMEOUT_SECONDS", "must be positive, got %g", c.CustomSQLTimeoutSeconds)
	}
	if r := c.LeaderboardRanker; r != "" && r != "sql" && !IsScriptRef(r) {
		fail("LEADERBOARD_RANKER", "must be sql (the built-in ranking by ranking_key) or path/to/file.star:function, got %q", r)
	}
	if c.ShutdownGraceSeconds < 0 {
		fail("SHUTDOWN_GRACE_SECONDS", "must not be negative, got %d", c.ShutdownGraceSeconds)
	}
	if c.GatewayCertDir != "" && c.SecureCertDir != "" {
		fail("SECURE_CERT_DIR", "cannot be used with GATEWAY_CERT_DIR: a node talks to its models in one mode, set only one")
	}
	if c.ModelRunnerTimeoutSeconds > 0 && c.JobRescueAfter() <= c.PredictJobTimeout() {
		fail("JOB_RESCUE_AFTER_SECONDS", "must exceed the predict job's timeout, 2×MODEL_RUNNER_TIMEOUT_SECONDS+10 = %gs, "+
			"so that a predict job that timed out has finished before it is retried; got %d",
			c.PredictJobTimeout().Seconds(), c.JobRescueAfterSeconds)
	}
	return errors.Join(errs...)
}

// ScoreInterval is SCORE_INTERVAL_SECONDS as a duration.
func (c *Config) ScoreInterval() time.Duration {
	return time.Duration(c.ScoreIntervalSeconds) * time.Second
}

// FeedPollInterval is FEED_POLL_SECONDS as a duration.
func (c *Config) FeedPollInterval() time.Duration {
	return time.Duration(c.FeedPollSeconds * float64(time.Second))
}

// ModelTimeout is MODEL_RUNNER_TIMEOUT_SECONDS as a duration.
func (c *Config) ModelTimeout() time.Duration {
	return time.Duration(c.ModelRunnerTimeoutSeconds * float64(time.Second))
}

// PredictJobTimeout bounds one predict job: two model calls (feed_update, then the
// method) at their deadline plus the database work. It is the only job timeout set by
// another setting rather than derived from the rescue window, which is why
// JOB_RESCUE_AFTER_SECONDS must exceed it.
func (c *Config) PredictJobTimeout() time.Duration {
	return 2*c.ModelTimeout() + 10*time.Second
}

// JobRescueAfter is JOB_RESCUE_AFTER_SECONDS as a duration.
func (c *Config) JobRescueAfter() time.Duration {
	return time.Duration(c.JobRescueAfterSeconds) * time.Second
}

// Print writes the effective configuration as indented JSON with secrets redacted, for
// `crunch-node config`.
func (c *Config) Print(w io.Writer) error {
	out := map[string]any{}
	v := reflect.ValueOf(*c)
	t := v.Type()
	for i := range t.NumField() {
		field := t.Field(i)
		key := strings.Split(field.Tag.Get("env"), ",")[0]
		if key == "" || key == "-" {
			continue
		}
		value := v.Field(i).Interface()
		switch field.Tag.Get("secret") {
		case "true":
			if value != "" {
				value = "<redacted>"
			}
		case "url":
			value = redactURLPassword(value.(string))
		}
		out[key] = value
	}
	feedOpts := maps.Clone(c.FeedOptions)
	if _, ok := feedOpts["api_key"]; ok {
		feedOpts["api_key"] = "<redacted>"
	}
	out["FEED_OPT"] = feedOpts
	out["crunch_config"] = c.Crunch
	encoder := json.NewEncoder(w)
	encoder.SetIndent("", "  ")
	return encoder.Encode(out)
}

func redactURLPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.String()
}
