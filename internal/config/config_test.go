package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crunchnode/crunch-node/internal/config"
)

// workspace writes files under a temporary workspace root and returns it.
func workspace(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	return dir
}

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoad(t *testing.T) {
	t.Parallel()

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.Load(envOf(nil), config.Options{Dir: t.TempDir()})
		require.NoError(t, err)
		require.Equal(t, "postgres://postgres@127.0.0.1:5432/crunch_node?sslmode=disable", cfg.DatabaseURL)
		require.Equal(t, 8000, cfg.ReportAPIPort)
		require.Equal(t, "binance", cfg.FeedSource)
		require.Equal(t, []string{"BTCUSDT"}, cfg.FeedSubjects)
		require.Equal(t, 60, cfg.ScoreIntervalSeconds)
		require.Equal(t, 3600, cfg.SnapshotPeriodSeconds)
		require.Equal(t, "pnl", cfg.ScoringFunction)
		require.Equal(t, []string{"score_recent", "score_steady", "score_anchor"}, cfg.Crunch.Aggregation.Windows.Names())
		require.Equal(t, 60*time.Second, cfg.Crunch.ScheduledPredictions[0].ResolveHorizon.D())
		require.Equal(t, 190*time.Second, cfg.JobRescueAfter(), "the predict timeout plus a minute")
	})

	t.Run("EnvironmentWinsOverLocalEnvFile", func(t *testing.T) {
		t.Parallel()
		dir := workspace(t, map[string]string{config.LocalEnvFile: "REPORT_API_PORT=9001\nCRUNCH_ID=from-file\n"})
		cfg, err := config.Load(envOf(map[string]string{"CRUNCH_ID": "from-env"}), config.Options{Dir: dir})
		require.NoError(t, err)
		require.Equal(t, 9001, cfg.ReportAPIPort)
		require.Equal(t, "from-env", cfg.CrunchID)
	})

	t.Run("FeedAliasesAndOptions", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.Load(envOf(map[string]string{
			"FEED_ASSETS":            "BTC, ETH",
			"FEED_SOURCE":            "pyth",
			"FEED_OPT_FEED_ID_SOL":   "abc",
			"FEED_OPT_HERMES_URL":    "http://127.0.0.1:1",
			"MARKET_RECORD_TTL_DAYS": "7",
		}), config.Options{Dir: t.TempDir()})
		require.NoError(t, err)
		require.Equal(t, []string{"BTC", "ETH"}, cfg.FeedSubjects)
		require.Equal(t, 7, cfg.FeedRecordTTLDays)
		require.Equal(t, "http://127.0.0.1:1", cfg.FeedOptions["hermes_url"])
	})

	t.Run("PostgresFallback", func(t *testing.T) {
		t.Parallel()
		cfg, err := config.Load(envOf(map[string]string{
			"POSTGRES_HOST": "db", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p w", "POSTGRES_DB": "x",
		}), config.Options{Dir: t.TempDir()})
		require.NoError(t, err)
		require.Equal(t, "postgres://u:p%20w@db:5432/x?sslmode=disable", cfg.DatabaseURL)
	})

	t.Run("CrunchConfigFromEnvPath", func(t *testing.T) {
		t.Parallel()
		dir := workspace(t, map[string]string{"custom.yaml": "scoring: {function: direction}\naggregation: {windows: {score_1h: 1h}, ranking_key: score_1h}\n"})
		cfg, err := config.Load(envOf(map[string]string{"CRUNCH_CONFIG": "custom.yaml"}), config.Options{Dir: dir})
		require.NoError(t, err)
		require.Equal(t, "direction", cfg.ScoringFunction)
		require.Equal(t, []string{"score_1h"}, cfg.Crunch.Aggregation.Windows.Names())
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  []string
	}{
		{
			name:  "BadIntegerNamesVariableAndFile",
			files: map[string]string{config.LocalEnvFile: "REPORT_API_PORT=eighty\n"},
			want:  []string{"node/.local.env", "REPORT_API_PORT", "eighty"},
		},
		{
			name: "BadValueFromEnvironment",
			env:  map[string]string{"FEED_POLL_SECONDS": "-1"},
			want: []string{"environment: FEED_POLL_SECONDS: must be positive"},
		},
		{
			name: "UnknownRanker",
			env:  map[string]string{"LEADERBOARD_RANKER": "elo"},
			want: []string{"environment: LEADERBOARD_RANKER: must be sql", `"elo"`},
		},
		{
			name: "UnknownModelSource",
			env:  map[string]string{"MODEL_SOURCE": "cloud"},
			want: []string{"MODEL_SOURCE", "cloud"},
		},
		{
			name: "GatewayAndSecureCertDirs",
			env:  map[string]string{"GATEWAY_CERT_DIR": "/certs/gw", "SECURE_CERT_DIR": "/certs/mtls"},
			want: []string{"SECURE_CERT_DIR", "cannot be used with GATEWAY_CERT_DIR"},
		},
		{
			name:  "UnknownYAMLFieldNamesLine",
			files: map[string]string{config.DefaultCrunchConfigFile: "scoring:\n  functoin: pnl\n"},
			want:  []string{"crunch_config.yaml", "line 2", "functoin"},
		},
		{
			name:  "RankingKeyMustExist",
			files: map[string]string{config.DefaultCrunchConfigFile: "aggregation: {ranking_key: score_1h}\n"},
			want:  []string{"aggregation.ranking_key", "score_1h"},
		},
		{
			name:  "UnknownMetric",
			files: map[string]string{config.DefaultCrunchConfigFile: "metrics: [ic, sharpness]\n"},
			want:  []string{"metrics[1]", "sharpness"},
		},
		{
			name:  "BadDuration",
			files: map[string]string{config.DefaultCrunchConfigFile: "scheduled_predictions: [{scope_key: a, prediction_interval: soon}]\n"},
			want:  []string{"line 1", "soon"},
		},
		{
			name:  "DuplicateScopeKey",
			files: map[string]string{config.DefaultCrunchConfigFile: "scheduled_predictions: [{scope_key: a}, {scope_key: a}]\n"},
			want:  []string{"scheduled_predictions[1].scope_key", "used twice"},
		},
		{
			name:  "BadArgType",
			files: map[string]string{config.DefaultCrunchConfigFile: "call_method: {method: predict, args: [{name: x, type: BLOB}]}\n"},
			want:  []string{"call_method.args[0].type", "BLOB"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(envOf(tt.env), config.Options{Dir: workspace(t, tt.files)})
			require.Error(t, err)
			for _, want := range tt.want {
				require.Contains(t, err.Error(), want)
			}
		})
	}
}

// TestJobRescueAfter: the rescue window must exceed the predict job's timeout,
// 2×MODEL_RUNNER_TIMEOUT_SECONDS+10 s, the one job timeout not derived from it.
func TestJobRescueAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		modelTimeout string
		rescue       string
		wantErr      string
		wantDefault  int
	}{
		{name: "DefaultsFit"},
		{name: "EqualToPredictTimeout", rescue: "130", wantErr: "environment: JOB_RESCUE_AFTER_SECONDS: must exceed the predict job's timeout, 2×MODEL_RUNNER_TIMEOUT_SECONDS+10 = 130s"},
		{name: "JustAbovePredictTimeout", rescue: "131"},
		{name: "ShortWindowWithDefaultModels", rescue: "60", wantErr: "got 60"},
		{name: "ShortWindowWithFastModels", modelTimeout: "0.5", rescue: "12"},
		{name: "SlowModelsNeedLongerWindow", modelTimeout: "300", rescue: "600", wantErr: "= 610s"},
		{name: "DefaultFollowsSlowModels", modelTimeout: "300", wantDefault: 670},
		{name: "DefaultWithDefaultModels", wantDefault: 190},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(envOf(map[string]string{
				"JOB_RESCUE_AFTER_SECONDS":     tt.rescue,
				"MODEL_RUNNER_TIMEOUT_SECONDS": tt.modelTimeout,
			}), config.Options{Dir: t.TempDir()})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Greater(t, cfg.JobRescueAfter(), cfg.PredictJobTimeout())
			if tt.wantDefault != 0 {
				require.Equal(t, tt.wantDefault, cfg.JobRescueAfterSeconds)
			}
		})
	}
}

func TestPrintRedactsSecrets(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(envOf(map[string]string{
		"API_KEY":      "s3cret-key",
		"DATABASE_URL": "postgres://u:hunter2@h:5432/d",
	}), config.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	var out strings.Builder
	require.NoError(t, cfg.Print(&out))
	require.NotContains(t, out.String(), "s3cret-key")
	require.NotContains(t, out.String(), "hunter2")
	require.Contains(t, out.String(), `"API_KEY": "\u003credacted\u003e"`)
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"15s", 15 * time.Second},
		{"24h", 24 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"90", 90 * time.Second},
		{"1h30m", 90 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := config.ParseDuration(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	_, err := config.ParseDuration("later")
	require.ErrorContains(t, err, "later")
}
