package modelrunner

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// StaticSource serves a fixed list of models, for model servers started by
// hand. It cannot stop a model, so a failure report is logged and the model
// is marked STOPPED, which is what the orchestrator would end up telling us.
type StaticSource struct {
	changed chan struct{}
	logger  *slog.Logger

	mu     sync.Mutex
	models []ModelInfo
}

// NewStaticSource copies models. An empty State means RUNNING and an empty
// DeploymentID means the model ID.
func NewStaticSource(models []ModelInfo, logger *slog.Logger) (*StaticSource, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ms := slices.Clone(models)
	seen := map[string]bool{}
	for i := range ms {
		if ms[i].ID == "" {
			return nil, fmt.Errorf("static model %d has no ID", i)
		}
		if seen[ms[i].ID] {
			return nil, fmt.Errorf("static model %s listed twice", ms[i].ID)
		}
		seen[ms[i].ID] = true
		if ms[i].State == "" {
			ms[i].State = StateRunning
		}
		if ms[i].DeploymentID == "" {
			ms[i].DeploymentID = ms[i].ID
		}
	}
	slices.SortFunc(ms, func(a, b ModelInfo) int { return strings.Compare(a.ID, b.ID) })
	return &StaticSource{changed: make(chan struct{}, 1), logger: logger, models: ms}, nil
}

// Run implements Source.
func (s *StaticSource) Run(ctx context.Context, sink func([]ModelInfo)) error {
	for {
		s.mu.Lock()
		snapshot := slices.Clone(s.models)
		s.mu.Unlock()
		sink(snapshot)
		select {
		case <-ctx.Done():
			return nil
		case <-s.changed:
		}
	}
}

// ReportFailure implements Source.
func (s *StaticSource) ReportFailure(ctx context.Context, report FailureReport) error {
	s.logger.WarnContext(ctx, "Static source: model failed, marking it stopped", slog.String("model_id", report.ModelID), slog.String("failure_code", string(report.Code)), slog.String("reason", report.Reason))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.models {
		if s.models[i].ID == report.ModelID && s.models[i].State != StateStopped {
			s.models[i].State = StateStopped
			select {
			case s.changed <- struct{}{}:
			default:
			}
		}
	}
	return nil
}
