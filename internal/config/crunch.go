package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// CrunchConfig is node/config/crunch_config.yaml: what the competition is. The field set
// follows the Python engine's CrunchConfig (reference §4.1), written as YAML with durations
// such as `24h` or `15s`.
type CrunchConfig struct {
	Aggregation          Aggregation           `json:"aggregation"           yaml:"aggregation"`
	CallMethod           CallMethod            `json:"call_method"           yaml:"call_method"`
	Callables            Callables             `json:"callables"             yaml:"callables"`
	Emission             Emission              `json:"emission"              yaml:"emission"`
	Ensembles            []Ensemble            `json:"ensembles"             yaml:"ensembles"`
	Feed                 Feed                  `json:"feed"                  yaml:"feed"`
	GroundTruth          GroundTruth           `json:"ground_truth"          yaml:"ground_truth"`
	Metrics              []string              `json:"metrics"               yaml:"metrics"`
	OutputSchema         map[string]any        `json:"output_schema"         yaml:"output_schema"`
	Retention            Retention             `json:"retention"             yaml:"retention"`
	ScheduledPredictions []ScheduledPrediction `json:"scheduled_predictions" yaml:"scheduled_predictions"`
	Scope                map[string]any        `json:"scope"                 yaml:"scope"`
	Scoring              Scoring               `json:"scoring"               yaml:"scoring"`
}

// Aggregation says how scores become snapshots and the leaderboard.
type Aggregation struct {
	MinPredictionsToRank int       `json:"min_predictions_to_rank" yaml:"min_predictions_to_rank"`
	RankingDirection     string    `json:"ranking_direction"       yaml:"ranking_direction"`
	RankingKey           string    `json:"ranking_key"             yaml:"ranking_key"`
	SnapshotPeriod       Duration  `json:"snapshot_period"         yaml:"snapshot_period"`
	ValueField           string    `json:"value_field"             yaml:"value_field"`
	Windows              WindowSet `json:"windows"                 yaml:"windows"`
}

// Window is one rolling leaderboard window, such as score_recent over 24h.
type Window struct {
	Name     string   `json:"name"`
	Duration Duration `json:"duration"`
}

// WindowSet keeps the windows in the order the file lists them, which is the order of the
// leaderboard columns.
type WindowSet []Window

// UnmarshalYAML reads a mapping of window name to duration, keeping its order.
func (w *WindowSet) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: windows must be a mapping of name to duration", node.Line)
	}
	set := WindowSet{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		var d Duration
		if err := node.Content[i+1].Decode(&d); err != nil {
			return err
		}
		set = append(set, Window{Name: node.Content[i].Value, Duration: d})
	}
	*w = set
	return nil
}

// Names lists the window names in order.
func (w WindowSet) Names() []string {
	names := make([]string, len(w))
	for i, window := range w {
		names[i] = window.Name
	}
	return names
}

// CallMethod is the model method called for each due scope and its positional arguments,
// whose values are read from the scope by name.
type CallMethod struct {
	Args   []CallArg `json:"args"   yaml:"args"`
	Method string    `json:"method" yaml:"method"`
}

// CallArg is one positional argument of the call method.
type CallArg struct {
	Name string `json:"name" yaml:"name"`
	Type string `json:"type" yaml:"type"`
}

// Callables name operator functions: a built-in name or `path/file.star:function`. The
// environment variables of the same names win over these.
type Callables struct {
	BuildEmission            string `json:"build_emission"             yaml:"build_emission"`
	InferenceInputBuilder    string `json:"inference_input_builder"    yaml:"inference_input_builder"`
	InferenceOutputValidator string `json:"inference_output_validator" yaml:"inference_output_validator"`
	LeaderboardRanker        string `json:"leaderboard_ranker"         yaml:"leaderboard_ranker"`
	ModelScoreAggregator     string `json:"model_score_aggregator"     yaml:"model_score_aggregator"`
	ResolveGroundTruth       string `json:"resolve_ground_truth"       yaml:"resolve_ground_truth"`
}

// Emission configures how checkpoints share rewards.
type Emission struct {
	ComputeProvider string `json:"compute_provider" yaml:"compute_provider"`
	CrunchPubkey    string `json:"crunch_pubkey"    yaml:"crunch_pubkey"`
	DataProvider    string `json:"data_provider"    yaml:"data_provider"`
	Strategy        string `json:"strategy"         yaml:"strategy"`
}

// Ensemble is one virtual model combining real models' predictions.
type Ensemble struct {
	Enabled  *bool    `json:"enabled"  yaml:"enabled"`
	Filters  []string `json:"filters"  yaml:"filters"`
	Name     string   `json:"name"     yaml:"name"`
	Strategy string   `json:"strategy" yaml:"strategy"`
}

// Feed describes the market data the competition runs on. FEED_* variables win.
type Feed struct {
	Granularity    string            `json:"granularity"     yaml:"granularity"`
	Kind           string            `json:"kind"            yaml:"kind"`
	Normalizer     string            `json:"normalizer"      yaml:"normalizer"`
	Source         string            `json:"source"          yaml:"source"`
	Subjects       []string          `json:"subjects"        yaml:"subjects"`
	SubjectMapping map[string]string `json:"subject_mapping" yaml:"subject_mapping"`
}

// GroundTruth configures how a prediction's outcome is read from the feed.
type GroundTruth struct {
	MaxStalenessFraction *float64 `json:"max_staleness_fraction" yaml:"max_staleness_fraction"`
	Resolver             string   `json:"resolver"               yaml:"resolver"`
	// UnresolvedGrace is how long after resolvable_at a prediction may stay unresolvable
	// (the feed may still catch up) before it is marked with a reason and left alone.
	UnresolvedGrace Duration `json:"unresolved_grace" yaml:"unresolved_grace"`
}

// Retention says how long scored history is kept. Feed records follow FEED_RECORD_TTL_DAYS.
type Retention struct {
	LeaderboardHistory Duration `json:"leaderboard_history" yaml:"leaderboard_history"`
	Predictions        Duration `json:"predictions"         yaml:"predictions"`
	Snapshots          Duration `json:"snapshots"           yaml:"snapshots"`
}

// ScheduledPrediction is one scope that models are asked about on a fixed cadence.
type ScheduledPrediction struct {
	Active             *bool          `json:"active"              yaml:"active"`
	Meta               map[string]any `json:"meta"                yaml:"meta"`
	Order              int            `json:"order"               yaml:"order"`
	PredictionInterval Duration       `json:"prediction_interval" yaml:"prediction_interval"`
	ResolveHorizon     Duration       `json:"resolve_horizon"     yaml:"resolve_horizon"`
	Scope              map[string]any `json:"scope"               yaml:"scope"`
	ScopeKey           string         `json:"scope_key"           yaml:"scope_key"`

	// The Python engine's spelling, in whole seconds; accepted as aliases.
	PredictionIntervalSeconds *int `json:"-" yaml:"prediction_interval_seconds"`
	ResolveHorizonSeconds     *int `json:"-" yaml:"resolve_horizon_seconds"`
}

// IsActive reports whether the schedule runs; schedules are active unless switched off.
func (s ScheduledPrediction) IsActive() bool { return s.Active == nil || *s.Active }

// Scoring names the scoring function.
type Scoring struct {
	Function string `json:"function" yaml:"function"`
}

// Duration is a time.Duration that YAML writes as `15s`, `24h`, `7d` or a number of seconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Seconds returns the duration in whole seconds.
func (d Duration) Seconds() int { return int(time.Duration(d) / time.Second) }

// MarshalText writes the duration the way it is read.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalYAML accepts Go durations, a `d` suffix for days, and plain seconds.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	parsed, err := ParseDuration(node.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", node.Line, err)
	}
	*d = Duration(parsed)
	return nil
}

// ParseDuration reads `15s`, `24h`, `7d`, `1h30m` or a plain number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if seconds, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(seconds * float64(time.Second)), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	parsed, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use forms like 15s, 24h, 7d)", s)
	}
	return parsed, nil
}

//go:embed crunch_config.default.yaml
var defaultCrunchConfig []byte

// DefaultCrunchConfigYAML is the embedded configuration used when no file is found: a
// BTCUSDT competition with a 60 s horizon, the defaults of the Python engine.
func DefaultCrunchConfigYAML() []byte { return slices.Clone(defaultCrunchConfig) }

// KnownMetrics are the metric names the engine computes (reference §5.5).
var knownMetrics = []string{
	"contribution", "ensemble_correlation", "fnc", "hit_rate", "ic", "ic_sharpe",
	"max_drawdown", "mean_return", "model_correlation", "sortino_ratio", "turnover",
}

// KnownMetrics lists the built-in metric names.
func KnownMetrics() []string { return slices.Clone(knownMetrics) }

var scriptRefPattern = regexp.MustCompile(`^[^:]+\.star:[A-Za-z_][A-Za-z0-9_]*$`)

// IsScriptRef reports whether a callable names a Starlark function (`file.star:fn`).
func IsScriptRef(s string) bool { return scriptRefPattern.MatchString(s) }

// ParseCrunchConfig decodes YAML strictly: an unknown field is an error that names its
// line, so a typo cannot silently fall back to a default.
func ParseCrunchConfig(data []byte) (*CrunchConfig, error) {
	var cfg CrunchConfig
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)
	if err := decoder.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s", strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", " "))
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// LoadCrunchConfig reads the file at path, or the embedded default when path is empty.
func LoadCrunchConfig(path string) (*CrunchConfig, error) {
	data := defaultCrunchConfig
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("reading crunch config: %w", err)
		}
	}
	cfg, err := ParseCrunchConfig(data)
	if err != nil {
		name := path
		if name == "" {
			name = "embedded crunch_config.default.yaml"
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cfg, nil
}

func (c *CrunchConfig) applyDefaults() {
	if c.CallMethod.Method == "" {
		c.CallMethod.Method = "predict"
	}
	if c.CallMethod.Args == nil {
		c.CallMethod.Args = []CallArg{
			{Name: "subject", Type: "STRING"},
			{Name: "resolve_horizon_seconds", Type: "INT"},
			{Name: "step_seconds", Type: "INT"},
		}
	}
	for i := range c.CallMethod.Args {
		c.CallMethod.Args[i].Type = strings.ToUpper(c.CallMethod.Args[i].Type)
	}
	for i := range c.ScheduledPredictions {
		sp := &c.ScheduledPredictions[i]
		if sp.PredictionIntervalSeconds != nil && sp.PredictionInterval == 0 {
			sp.PredictionInterval = Duration(time.Duration(*sp.PredictionIntervalSeconds) * time.Second)
		}
		if sp.ResolveHorizonSeconds != nil && sp.ResolveHorizon == 0 {
			sp.ResolveHorizon = Duration(time.Duration(*sp.ResolveHorizonSeconds) * time.Second)
		}
		if sp.PredictionInterval == 0 {
			sp.PredictionInterval = Duration(time.Minute)
		}
	}
	if c.Feed.Normalizer == "" {
		c.Feed.Normalizer = "candle"
	}
	if c.GroundTruth.Resolver == "" {
		c.GroundTruth.Resolver = "default"
	}
	if c.GroundTruth.MaxStalenessFraction == nil {
		f := 0.2
		c.GroundTruth.MaxStalenessFraction = &f
	}
	if c.GroundTruth.UnresolvedGrace == 0 {
		c.GroundTruth.UnresolvedGrace = Duration(10 * time.Minute)
	}
	a := &c.Aggregation
	if a.SnapshotPeriod == 0 {
		a.SnapshotPeriod = Duration(time.Hour)
	}
	if a.Windows == nil {
		a.Windows = WindowSet{
			{Name: "score_recent", Duration: Duration(24 * time.Hour)},
			{Name: "score_steady", Duration: Duration(72 * time.Hour)},
			{Name: "score_anchor", Duration: Duration(168 * time.Hour)},
		}
	}
	if a.ValueField == "" {
		a.ValueField = "value"
	}
	if a.RankingKey == "" && len(a.Windows) > 0 {
		a.RankingKey = a.Windows[0].Name
	}
	if a.RankingDirection == "" {
		a.RankingDirection = "desc"
	}
	if c.Metrics == nil {
		c.Metrics = []string{"ic", "ic_sharpe", "hit_rate", "max_drawdown", "model_correlation"}
	}
	if c.Emission.Strategy == "" {
		c.Emission.Strategy = "tiers"
	}
	if c.Scoring.Function == "" {
		c.Scoring.Function = "pnl"
	}
	r := &c.Retention
	if r.Predictions == 0 {
		r.Predictions = Duration(30 * 24 * time.Hour)
	}
	if r.Snapshots == 0 {
		r.Snapshots = Duration(90 * 24 * time.Hour)
	}
	if r.LeaderboardHistory == 0 {
		r.LeaderboardHistory = Duration(30 * 24 * time.Hour)
	}
}

// Validate checks every field whose mistakes would otherwise surface later as confusing
// behaviour. Each message names the field by its YAML path.
func (c *CrunchConfig) Validate() error {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(c.CallMethod.Method) {
		fail("call_method.method", "must be a method name, got %q", c.CallMethod.Method)
	}
	for i, arg := range c.CallMethod.Args {
		if arg.Name == "" {
			fail(fmt.Sprintf("call_method.args[%d].name", i), "must not be empty")
		}
		if !slices.Contains([]string{"STRING", "INT", "DOUBLE", "FLOAT", "JSON"}, arg.Type) {
			fail(fmt.Sprintf("call_method.args[%d].type", i), "must be one of STRING, INT, DOUBLE, JSON; got %q", arg.Type)
		}
	}

	seen := map[string]bool{}
	for i, sp := range c.ScheduledPredictions {
		field := fmt.Sprintf("scheduled_predictions[%d]", i)
		if strings.TrimSpace(sp.ScopeKey) == "" {
			fail(field+".scope_key", "must not be empty")
		} else if seen[sp.ScopeKey] {
			fail(field+".scope_key", "%q is used twice", sp.ScopeKey)
		}
		seen[sp.ScopeKey] = true
		if sp.PredictionInterval.D() < time.Second {
			fail(field+".prediction_interval", "must be at least 1s, got %s", sp.PredictionInterval.D())
		}
		if sp.ResolveHorizon.D() < 0 {
			fail(field+".resolve_horizon", "must not be negative, got %s", sp.ResolveHorizon.D())
		}
	}

	if !slices.Contains([]string{"candle", "tick"}, c.Feed.Normalizer) {
		fail("feed.normalizer", "must be candle or tick, got %q", c.Feed.Normalizer)
	}
	if f := *c.GroundTruth.MaxStalenessFraction; f < 0 || f > 1 {
		fail("ground_truth.max_staleness_fraction", "must be between 0 and 1, got %g", f)
	}
	if r := c.GroundTruth.Resolver; r != "default" && !IsScriptRef(r) {
		fail("ground_truth.resolver", "must be default or file.star:function, got %q", r)
	}

	a := c.Aggregation
	if a.SnapshotPeriod.D() < time.Second {
		fail("aggregation.snapshot_period", "must be at least 1s, got %s", a.SnapshotPeriod.D())
	}
	windowNames := map[string]bool{}
	for _, w := range a.Windows {
		if w.Name == "" {
			fail("aggregation.windows", "a window needs a name")
		}
		if w.Duration.D() < time.Second {
			fail("aggregation.windows."+w.Name, "must be at least 1s, got %s", w.Duration.D())
		}
		windowNames[w.Name] = true
	}
	if a.RankingDirection != "asc" && a.RankingDirection != "desc" {
		fail("aggregation.ranking_direction", "must be asc or desc, got %q", a.RankingDirection)
	}
	if a.MinPredictionsToRank < 0 {
		fail("aggregation.min_predictions_to_rank", "must not be negative, got %d", a.MinPredictionsToRank)
	}
	metricNames := map[string]bool{}
	for i, m := range c.Metrics {
		if !slices.Contains(knownMetrics, m) && !IsScriptRef(m) {
			fail(fmt.Sprintf("metrics[%d]", i), "unknown metric %q (known: %s, or file.star:function)", m, strings.Join(knownMetrics, ", "))
		}
		metricNames[m] = true
	}
	if !windowNames[a.RankingKey] && !metricNames[a.RankingKey] && a.RankingKey != a.ValueField {
		keys := append(a.Windows.Names(), c.Metrics...)
		sort.Strings(keys)
		fail("aggregation.ranking_key", "%q names no window or metric (have: %s)", a.RankingKey, strings.Join(keys, ", "))
	}

	for i, e := range c.Ensembles {
		field := fmt.Sprintf("ensembles[%d]", i)
		if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(e.Name) {
			fail(field+".name", "must be letters, digits, _ or -, got %q", e.Name)
		}
		if e.Strategy != "" && e.Strategy != "inverse_variance" && e.Strategy != "equal_weight" {
			fail(field+".strategy", "must be inverse_variance or equal_weight, got %q", e.Strategy)
		}
	}

	if s := c.Emission.Strategy; s != "tiers" && s != "contribution_weighted" && !IsScriptRef(s) {
		fail("emission.strategy", "must be tiers, contribution_weighted or file.star:function, got %q", s)
	}
	return errors.Join(errs...)
}
