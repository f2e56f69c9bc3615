package scaffold_test

import (
	"bytes"
	"context"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/joho/godotenv"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/customsql"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
	"github.com/crunchnode/crunch-node/internal/predict"
	"github.com/crunchnode/crunch-node/internal/pyhost"
	"github.com/crunchnode/crunch-node/internal/scaffold"
	"github.com/crunchnode/crunch-node/internal/scoring"
	"github.com/crunchnode/crunch-node/internal/script"
)

// generate writes a workspace named name into a fresh temporary directory.
func generate(t *testing.T, name string) string {
	t.Helper()
	dir, err := scaffold.Generate(scaffold.Options{Dir: filepath.Join(t.TempDir(), "ws"), Name: name})
	require.NoError(t, err)
	return dir
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func tree(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	}))
	slices.Sort(files)
	return files
}

func TestGenerateTree(t *testing.T) {
	t.Parallel()
	dir := generate(t, "btc-sprint")
	require.True(t, filepath.IsAbs(dir))
	require.Equal(t, []string{
		".gitignore",
		"README.md",
		"challenge/README.md",
		"challenge/btc_sprint/__init__.py",
		"challenge/btc_sprint/cruncher.py",
		"challenge/examples/contrarian/cruncher.py",
		"challenge/examples/contrarian/main.py",
		"challenge/examples/contrarian/requirements.txt",
		"challenge/examples/mean_reversion/cruncher.py",
		"challenge/examples/mean_reversion/main.py",
		"challenge/examples/mean_reversion/requirements.txt",
		"challenge/examples/momentum/cruncher.py",
		"challenge/examples/momentum/main.py",
		"challenge/examples/momentum/requirements.txt",
		"challenge/scoring.star",
		"challenge/tests/__init__.py",
		"challenge/tests/helpers.py",
		"challenge/tests/test_cruncher.py",
		"challenge/tests/test_examples.py",
		"challenge/tests/test_scoring.py",
		"compose.yaml",
		"node/.local.env",
		"node/.local.env.example",
		"node/api/top_models.sql",
		"node/config/crunch_config.yaml",
		"node/config/models.dev.yml",
	}, tree(t, dir))

	// .local.env is the example's copy, private to its owner.
	require.Equal(t, read(t, filepath.Join(dir, "node/.local.env.example")), read(t, filepath.Join(dir, "node/.local.env")))
	fi, err := os.Stat(filepath.Join(dir, "node/.local.env"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// Every example is a self-contained submission: the challenge's cruncher.py, unchanged.
	canonical := read(t, filepath.Join(dir, "challenge/btc_sprint/cruncher.py"))
	require.Contains(t, canonical, "class ModelBaseClass")
	for _, example := range []string{"contrarian", "mean_reversion", "momentum"} {
		require.Equal(t, canonical, read(t, filepath.Join(dir, "challenge/examples", example, "cruncher.py")), example)
	}
}

func TestGenerateSubstitutesNames(t *testing.T) {
	t.Parallel()
	dir := generate(t, "eth-flash_2")
	for _, rel := range tree(t, dir) {
		require.NotContains(t, rel, "starter", rel)
		content := read(t, filepath.Join(dir, rel))
		require.NotContains(t, content, "starter-challenge", rel)
		require.NotContains(t, content, "starter_challenge", rel)
	}
	require.DirExists(t, filepath.Join(dir, "challenge/eth_flash_2"))
	require.Contains(t, read(t, filepath.Join(dir, "node/.local.env")), "\nCRUNCH_ID=eth-flash_2\n")
	require.Contains(t, read(t, filepath.Join(dir, "compose.yaml")), "\nname: eth-flash_2\n")
	require.Contains(t, read(t, filepath.Join(dir, "node/config/models.dev.yml")), "crunch_id: eth-flash_2")
	require.Contains(t, read(t, filepath.Join(dir, "README.md")), "# eth-flash_2\n")
	require.Contains(t, read(t, filepath.Join(dir, "challenge/README.md")), "# eth-flash_2: the participant's kit")
}

func TestGenerateRefusesExistingTarget(t *testing.T) {
	t.Parallel()
	dir := generate(t, "btc-sprint")
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("mine"), 0o644))

	_, err := scaffold.Generate(scaffold.Options{Dir: dir, Name: "other"})
	require.ErrorIs(t, err, scaffold.ErrExists)
	require.ErrorContains(t, err, dir+" already exists")
	require.Equal(t, "mine", read(t, readme), "an existing workspace is never touched")

	empty := t.TempDir()
	_, err = scaffold.Generate(scaffold.Options{Dir: empty, Name: "btc-sprint"})
	require.ErrorIs(t, err, scaffold.ErrExists, "not even an empty directory")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = scaffold.Generate(scaffold.Options{Dir: file, Name: "btc-sprint"})
	require.ErrorIs(t, err, scaffold.ErrExists)
}

func TestGenerateRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "BTC", "1btc", "btc sprint", "btc--sprint", "btc-", "../btc", "btc/sprint", "-btc"} {
		_, err := scaffold.Generate(scaffold.Options{Dir: filepath.Join(t.TempDir(), "ws"), Name: name})
		require.ErrorContains(t, err, "invalid competition name", "%q", name)
	}
	target := filepath.Join(t.TempDir(), "ws")
	_, err := scaffold.Generate(scaffold.Options{Dir: target, Name: "btc", Pack: "tournament"})
	require.EqualError(t, err, `unknown pack "tournament" (available: realtime)`)
	require.NoDirExists(t, target)

	require.Equal(t, []string{"realtime"}, scaffold.Packs())
	require.Equal(t, "btc_sprint_2", scaffold.SnakeName("btc-sprint-2"))
}

func TestGeneratedConfigLoads(t *testing.T) {
	t.Parallel()
	dir := generate(t, "btc-sprint")

	crunch, err := config.ParseCrunchConfig([]byte(read(t, filepath.Join(dir, "node/config/crunch_config.yaml"))))
	require.NoError(t, err)
	require.Equal(t, "challenge/scoring.star:score", crunch.Scoring.Function)
	require.Equal(t, "score_1h", crunch.Aggregation.RankingKey)
	require.Len(t, crunch.ScheduledPredictions, 1)
	require.Equal(t, 60, crunch.ScheduledPredictions[0].ResolveHorizon.Seconds())

	// The whole workspace as the node reads it: .local.env, then the competition file.
	cfg, err := config.Load(func(string) string { return "" }, config.Options{Dir: dir})
	require.NoError(t, err)
	require.Equal(t, "btc-sprint", cfg.CrunchID)
	require.Equal(t, "local", cfg.ModelSource)
	require.Equal(t, "node/config/models.dev.yml", cfg.ModelsFile)
	require.Equal(t, filepath.Join(dir, "node/config/crunch_config.yaml"), cfg.CrunchConfigPath)
	require.Equal(t, []string{"BTCUSDT"}, cfg.FeedSubjects)

	// The output schema accepts a position and rejects what is not one.
	validator, err := predict.NewSchemaValidator(crunch.OutputSchema)
	require.NoError(t, err)
	require.NoError(t, validator.Check(map[string]any{"value": -0.25}))
	require.Error(t, validator.Check(map[string]any{"value": 2.0}))
	require.Error(t, validator.Check(map[string]any{"position": 0.5}))
}

// TestLocalEnvListsEverySetting: every variable the node reads is documented, and
// uncommenting any line gives a clean value.
func TestLocalEnvListsEverySetting(t *testing.T) {
	t.Parallel()
	dir := generate(t, "btc-sprint")
	example := read(t, filepath.Join(dir, "node/.local.env.example"))
	params, err := env.GetFieldParams(&config.Config{})
	require.NoError(t, err)
	require.NotEmpty(t, params)
	for _, p := range params {
		require.Regexp(t, regexp.MustCompile(`(?m)^(# )?`+p.Key+`=`), example, "%s is not listed", p.Key)
	}
	for _, alias := range []string{"FEED_ASSETS", "MARKET_RECORD_TTL_DAYS", "FEED_OPT_"} {
		require.Contains(t, example, alias)
	}

	active, err := godotenv.Unmarshal(example)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"CRUNCH_ID": "btc-sprint", "MODEL_SOURCE": "local", "MODELS_FILE": "node/config/models.dev.yml"}, active)

	uncommented := regexp.MustCompile(`(?m)^# ([A-Z][A-Z0-9_]*=)`).ReplaceAllString(example, "$1")
	all, err := godotenv.Unmarshal(uncommented)
	require.NoError(t, err)
	for key, value := range all {
		require.NotContains(t, value, "#", key)
		require.NotContains(t, value, " ", key)
	}
	require.Equal(t, "binance", all["FEED_SOURCE"])
	require.Equal(t, "8000", all["REPORT_API_PORT"])
}

func TestGeneratedScoringFunction(t *testing.T) {
	t.Parallel()
	dir := generate(t, "btc-sprint")
	ref := filepath.Join(dir, "challenge/scoring.star") + ":score"
	scorer, err := scoring.NewRegistry().Scorer(ref, script.Options{})
	require.NoError(t, err)

	gt := map[string]any{"entry_price": 100.0, "resolved_price": 100.2, "profit": 0.002, "direction_up": true}
	for _, tc := range []struct {
		value any
		want  float64
	}{
		{value: 0.5, want: 10},
		{value: -1.0, want: -20},
		{value: 0.0, want: 0},
		{value: 7.0, want: 20}, // clamped to 1
		{value: -3, want: -20}, // an int, clamped to -1
	} {
		res := scoring.ScoreOne(t.Context(), scorer, scoring.Item{GroundTruth: gt, ModelID: "1", Prediction: map[string]any{"value": tc.value}})
		require.True(t, res.Success, res.FailedReason)
		require.InDelta(t, tc.want, res.Value, 1e-9, "value %v", tc.value)
	}
	res := scoring.ScoreOne(t.Context(), scorer, scoring.Item{
		GroundTruth: map[string]any{"entry_price": 0.0, "profit": 0.0},
		Prediction:  map[string]any{"value": 1.0},
	})
	require.False(t, res.Success)
	require.Equal(t, "entry price is 0", res.FailedReason)
}

func TestGeneratedModelsAndEndpoints(t *testing.T) {
	t.Parallel()
	dir := generate(t, "btc-sprint")
	models, err := modelrunner.LoadLocalModels(filepath.Join(dir, "node/config/models.dev.yml"))
	require.NoError(t, err)
	require.Len(t, models, 3)
	var names []string
	for _, m := range models {
		names = append(names, m.ModelName)
		require.Equal(t, "python", m.Runtime)
		require.Equal(t, modelrunner.StateRunning, m.DesiredState)
		require.Equal(t, "btc-sprint", m.CrunchID)
		require.FileExists(t, filepath.Join(dir, m.CodeDir, "main.py"))
		require.FileExists(t, filepath.Join(dir, m.CodeDir, "cruncher.py"))
	}
	require.Equal(t, []string{"mean-reversion", "momentum", "contrarian"}, names)

	set, errs := customsql.Load(filepath.Join(dir, "node/api"))
	require.Empty(t, errs)
	require.NotNil(t, set)
	sql := read(t, filepath.Join(dir, "node/api/top_models.sql"))
	require.Contains(t, sql, "-- param: limit int = 10\n")
	require.Contains(t, sql, "SELECT model_id, model_name, rank, ranking_value FROM leaderboard WHERE rank IS NOT NULL ORDER BY rank LIMIT @limit")
}

func TestGeneratedCompose(t *testing.T) {
	t.Parallel()
	dir := generate(t, "btc-sprint")
	var compose struct {
		Name     string `yaml:"name"`
		Services map[string]struct {
			Command  []string          `yaml:"command"`
			Image    string            `yaml:"image"`
			Profiles []string          `yaml:"profiles"`
			Volumes  []string          `yaml:"volumes"`
			Env      map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(read(t, filepath.Join(dir, "compose.yaml"))), &compose))
	require.Equal(t, "btc-sprint", compose.Name)
	var services []string
	for name := range compose.Services {
		services = append(services, name)
	}
	slices.Sort(services)
	require.Equal(t, []string{"feed", "migrate", "model-orchestrator", "postgres", "predict", "report", "score"}, services)
	for _, role := range []string{"feed", "predict", "score", "report"} {
		s := compose.Services[role]
		require.Equal(t, []string{"run", "--roles", role}, s.Command)
		require.Equal(t, "${CRUNCH_NODE_IMAGE:-crunch-node:local}", s.Image)
		require.Contains(t, s.Volumes, "./challenge:/app/challenge:ro", "the scoring function is read from challenge/")
		require.Equal(t, "${MODEL_SOURCE:-orchestrator}", s.Env["MODEL_SOURCE"])
	}
	require.Equal(t, []string{"migrate"}, compose.Services["migrate"].Command)
	require.Equal(t, []string{"orchestrator"}, compose.Services["model-orchestrator"].Profiles)
	require.Empty(t, compose.Services["report"].Profiles)
}

// TestGeneratedPythonTests runs the challenge's own tests with python3, as a participant
// would, and checks they catch a broken submission.
func TestGeneratedPythonTests(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the challenge tests need python3 (CI=true): %v", err)
		}
		t.Skipf("skipping: python3 not found (with CI=true this is a failure): %v", err)
	}
	dir := generate(t, "btc-sprint")
	challenge := filepath.Join(dir, "challenge")
	run := func() (string, error) {
		cmd := exec.Command(python, "-m", "unittest", "-v")
		cmd.Dir = challenge
		cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := run()
	require.NoError(t, err, out)
	ran := regexp.MustCompile(`Ran (\d+) tests`).FindStringSubmatch(out)
	require.NotNil(t, ran, out)
	require.Equal(t, "16", ran[1], out)
	require.Contains(t, out, "\nOK")

	// A submission whose cruncher.py drifted from the challenge's fails the suite.
	stale := filepath.Join(challenge, "examples/momentum/cruncher.py")
	require.NoError(t, os.WriteFile(stale, []byte(strings.Replace(read(t, stale), "Base class", "Base klass", 1)), 0o644))
	out, err = run()
	require.Error(t, err, out)
	require.Contains(t, out, "momentum/cruncher.py differs from the challenge's cruncher.py")
}

// TestGeneratedExamplesRunInPythonHost serves each generated example through the Python
// model host, started by the local model source from the generated models.dev.yml, and
// asks it for a prediction as the predict role would.
func TestGeneratedExamplesRunInPythonHost(t *testing.T) {
	t.Parallel()
	python, err := pyhost.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the python model host needs python3 with grpc (CI=true): %v", err)
		}
		t.Skipf("skipping: %v (with CI=true this is a failure)", err)
	}
	dir := generate(t, "btc-sprint")
	models, err := modelrunner.LoadLocalModels(filepath.Join(dir, "node/config/models.dev.yml"))
	require.NoError(t, err)
	for i := range models {
		models[i].CodeDir = filepath.Join(dir, models[i].CodeDir) // the node runs in dir
	}
	data, err := yaml.Marshal(map[string]any{"models": models})
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "models.dev.yml")
	require.NoError(t, os.WriteFile(file, data, 0o644))

	source, err := modelrunner.NewLocalSource(modelrunner.LocalOptions{
		File:         file,
		PollInterval: -1,
		Runtimes:     map[string]modelrunner.CommandFunc{"python": pyhost.NewRuntime(pyhost.Options{CacheDir: t.TempDir(), Python: python})},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	snapshots := make(chan []modelrunner.ModelInfo, 16)
	done := make(chan error, 1)
	go func() {
		done <- source.Run(ctx, func(infos []modelrunner.ModelInfo) {
			select {
			case snapshots <- infos:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	running := map[string]modelrunner.ModelInfo{}
	deadline := time.After(60 * time.Second)
	for len(running) < 3 {
		select {
		case infos := <-snapshots:
			for _, info := range infos {
				if info.State == modelrunner.StateRunning {
					running[info.Name] = info
				}
			}
		case err := <-done:
			t.Fatalf("local source stopped: %v", err)
		case <-deadline:
			t.Fatalf("only %d of 3 example models came up", len(running))
		}
	}

	closes := make([]any, 61)
	for i := range closes {
		c := 100 + 0.5*math.Sin(float64(i)*0.7)
		if i == 60 {
			c = 110 // a jump up at the end
		}
		closes[i] = map[string]any{"ts": 1_700_000_000 + 60*i, "open": c, "high": c, "low": c, "close": c, "volume": 1.0}
	}
	feed, err := variant.Args(map[string]any{"symbol": "BTCUSDT", "asof_ts": 1_700_003_600, "candles_1m": closes})
	require.NoError(t, err)
	args, err := variant.Args("BTCUSDT", 60, 15)
	require.NoError(t, err)
	want := map[string]float64{"contrarian": -1, "mean-reversion": -1, "momentum": 1}
	for name, info := range running {
		client, err := modelrunner.NewClient(info, modelrunner.ClientOptions{CallTimeout: 20 * time.Second, SetupAttempts: 1, SetupTimeout: 20 * time.Second})
		require.NoError(t, err)
		t.Cleanup(func() { _ = client.Close() })
		require.NoError(t, client.Setup(t.Context()), name)
		res := client.Call(t.Context(), "feed_update", feed, nil)
		require.Equal(t, modelrunner.StatusSuccess, res.Status, "%s: %v", name, res.Err)
		res = client.Call(t.Context(), "predict", args, nil)
		require.Equal(t, modelrunner.StatusSuccess, res.Status, "%s: %v", name, res.Err)
		value := res.Value.(map[string]any)["value"].(float64)
		require.LessOrEqual(t, math.Abs(value), 1.0, name)
		require.Equal(t, want[name], math.Copysign(1, value), "%s predicted %v", name, value)
	}
}
