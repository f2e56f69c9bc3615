package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gopkg.in/yaml.v3"

	"github.com/crunchnode/crunch-node/internal/config"
	"github.com/crunchnode/crunch-node/internal/feed"
	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/predict"
	"github.com/crunchnode/crunch-node/internal/pyhost"
	"github.com/crunchnode/crunch-node/jobs"
)

// runModelServer is `crunch-node model-server`: the Go model host with the example
// models and fault injection, serving the CrunchDAO model-runner protocol.
func runModelServer(ctx context.Context, env *environment, args []string) error {
	if err := modelhost.Run(ctx, args, env.stdout); err != nil {
		return fmt.Errorf("model server: %w", err)
	}
	return nil
}

// modelSource builds the configured source of models: CrunchDAO's orchestrator, a static
// list, or local model hosts started by this process.
func modelSource(cfg *config.Config, dir string, logger *slog.Logger) (modelrunner.Source, error) {
	logger = logger.With(slog.String("component", "models"))
	file := cfg.ModelsFile
	if !filepath.IsAbs(file) && dir != "" {
		file = filepath.Join(dir, file)
	}
	switch cfg.ModelSource {
	case "orchestrator":
		url := modelrunner.OrchestratorURL(cfg.ModelRunnerNodeHost, cfg.ModelRunnerNodePort, cfg.CrunchID)
		return modelrunner.NewOrchestratorSource(modelrunner.OrchestratorOptions{URL: url, Logger: logger})
	case "static":
		models, err := loadStaticModels(file)
		if err != nil {
			return nil, err
		}
		return modelrunner.NewStaticSource(models, logger)
	case "local":
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding this executable to start model hosts: %w", err)
		}
		runtimes := map[string]modelrunner.CommandFunc{
			"go": modelrunner.GoRuntime(self, "model-server"),
		}
		runtimes["python"] = inWorkspace(dir, pyhost.NewRuntime(pyhost.Options{BaseClass: cfg.ModelBaseClassname}))
		return modelrunner.NewLocalSource(modelrunner.LocalOptions{
			File: file, Logger: logger, Runtimes: runtimes, PollInterval: 5 * time.Second,
		})
	}
	return nil, fmt.Errorf("MODEL_SOURCE: unknown source %q", cfg.ModelSource)
}

// staticModel is one entry of a static models file: where an already running model
// runner listens.
type staticModel struct {
	CruncherID   string `yaml:"cruncher_id"`
	CruncherName string `yaml:"cruncher_name"`
	DeploymentID string `yaml:"deployment_id"`
	Host         string `yaml:"host"`
	ID           string `yaml:"id"`
	ModelName    string `yaml:"model_name"`
	Port         int    `yaml:"port"`
}

func loadStaticModels(path string) ([]modelrunner.ModelInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("MODELS_FILE: %w", err)
	}
	var file struct {
		Models []staticModel `yaml:"models"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("MODELS_FILE %s: %w", path, err)
	}
	models := make([]modelrunner.ModelInfo, 0, len(file.Models))
	for i, m := range file.Models {
		if m.Host == "" || m.Port == 0 {
			return nil, fmt.Errorf("MODELS_FILE %s: models[%d]: host and port are required for the static source", path, i)
		}
		models = append(models, modelrunner.ModelInfo{
			DeploymentID: or(m.DeploymentID, m.ID), Host: m.Host, ID: m.ID, Name: or(m.ModelName, m.ID),
			PlayerID: m.CruncherID, PlayerName: m.CruncherName, Port: m.Port, State: modelrunner.StateRunning,
		})
	}
	return models, nil
}

// startPredicting connects the predict role to its models: it runs the source, keeps the
// runner's connections in step with it, and mirrors every snapshot into the models table.
func startPredicting(ctx context.Context, cfg *config.Config, dir string, pool *pgxpool.Pool, logger *slog.Logger) (*jobs.Predicting, func(), error) {
	// The callables are loaded before anything starts, so a broken reference stops the
	// process with the variable's name instead of failing every tick.
	opts := scriptOptions()
	input, err := predict.NewInputBuilder(resolveRef(cfg.InferenceInputBuilder, dir), cfg.Crunch.Feed.Normalizer, opts)
	if err != nil {
		return nil, nil, err
	}
	validator, err := predict.NewValidator(resolveRef(cfg.InferenceOutputValidator, dir), cfg.Crunch.OutputSchema, opts)
	if err != nil {
		return nil, nil, err
	}
	source, err := modelSource(cfg, dir, logger)
	if err != nil {
		return nil, nil, err
	}
	security, err := modelSecurity(cfg)
	if err != nil {
		return nil, nil, err
	}
	runner := modelrunner.NewRunner(modelrunner.RunnerOptions{
		Logger: logger.With(slog.String("component", "runner")),
		Client: modelrunner.ClientOptions{
			BaseClassName: cfg.ModelBaseClassname,
			CallTimeout:   cfg.ModelTimeout(),
			Security:      security,
		},
	})
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := runner.Run(runCtx, source, func(models []modelrunner.ModelInfo) {
			if err := jobs.MirrorModels(runCtx, pool, models); err != nil && !errors.Is(err, context.Canceled) {
				logger.WarnContext(runCtx, "Models: mirroring into the database failed", slog.String("error", err.Error()))
			}
		})
		if err != nil {
			logger.ErrorContext(runCtx, "Models: source stopped", slog.String("error", err.Error()))
		}
	}()
	stop := func() {
		cancel()
		<-done
		runner.Close()
	}
	return &jobs.Predicting{
		Input:     input,
		Runner:    runner,
		Symbols:   feed.SymbolMap(cfg.Crunch.Feed.SubjectMapping),
		Validator: validator,
	}, stop, nil
}

// modelSecurity picks the transport to models: the mTLS wallet mode when
// SECURE_CERT_DIR is set, gateway signing when GATEWAY_CERT_DIR is, plaintext
// otherwise (config validation refuses both at once). A cert directory that
// cannot be read stops start-up rather than silently downgrading.
func modelSecurity(cfg *config.Config) (modelrunner.Security, error) {
	switch {
	case cfg.SecureCertDir != "":
		secure, err := modelrunner.NewSecure(modelrunner.SecureOptions{CertDir: cfg.SecureCertDir})
		if err != nil {
			return nil, fmt.Errorf("SECURE_CERT_DIR %s: %w", cfg.SecureCertDir, err)
		}
		return secure, nil
	case cfg.GatewayCertDir != "":
		gateway, err := modelrunner.NewGateway(modelrunner.GatewayOptions{CertDir: cfg.GatewayCertDir})
		if err != nil {
			return nil, fmt.Errorf("GATEWAY_CERT_DIR: %w", err)
		}
		return gateway, nil
	}
	return modelrunner.Insecure{}, nil
}

// inWorkspace resolves a model's relative code_dir against the workspace root, where the
// models file's paths are written from, whatever the node's working directory.
func inWorkspace(dir string, run modelrunner.CommandFunc) modelrunner.CommandFunc {
	return func(m modelrunner.LocalModel, port int) (*exec.Cmd, error) {
		if m.CodeDir != "" && !filepath.IsAbs(m.CodeDir) && dir != "" {
			m.CodeDir = filepath.Join(dir, m.CodeDir)
		}
		return run(m, port)
	}
}
