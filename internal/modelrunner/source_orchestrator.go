package modelrunner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Orchestrator events.
const (
	EventInit          = "init"
	EventReportFailure = "report_failure"
	EventUpdate        = "update"
)

// OrchestratorMessage is one parsed server→node frame.
type OrchestratorMessage struct {
	Event  string
	Models []ModelInfo
	// Skipped describes entries that were dropped as invalid; the valid
	// ones are still applied, so one bad entry cannot hide the others.
	Skipped []string
}

// orchestratorModelState is the wire shape of one ModelState.
type orchestratorModelState struct {
	DeploymentID string           `json:"deployment_id"`
	Infos        orchestratorInfo `json:"infos"`
	IP           *string          `json:"ip"`
	ModelID      string           `json:"model_id"`
	Port         json.RawMessage  `json:"port"`
	State        string           `json:"state"`
}

type orchestratorInfo struct {
	CruncherHotkey       *string `json:"cruncher_hotkey"`
	CruncherID           *string `json:"cruncher_id"`
	CruncherName         *string `json:"cruncher_name"`
	CruncherWalletPubkey *string `json:"cruncher_wallet_pubkey"`
	ModelName            *string `json:"model_name"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ParseOrchestratorMessage parses a frame of the orchestrator WebSocket:
// {"event": "init"|"update", "data": [ModelState, ...]}. `port` may be a
// number or a string (Docker's API gives strings); cruncher_name falls back
// to cruncher_id. An {"error": "..."} frame is returned as an error.
func ParseOrchestratorMessage(data []byte) (OrchestratorMessage, error) {
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *string         `json:"error"`
		Event string          `json:"event"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return OrchestratorMessage{}, fmt.Errorf("parsing orchestrator message: %w", err)
	}
	if env.Error != nil {
		return OrchestratorMessage{}, fmt.Errorf("orchestrator error: %s", *env.Error)
	}
	msg := OrchestratorMessage{Event: env.Event}
	if env.Event != EventInit && env.Event != EventUpdate {
		return msg, nil // unknown events are ignored by the caller
	}
	var raw []json.RawMessage
	if len(env.Data) > 0 && !bytes.Equal(env.Data, []byte("null")) {
		if err := json.Unmarshal(env.Data, &raw); err != nil {
			return OrchestratorMessage{}, fmt.Errorf("parsing orchestrator %s data: %w", env.Event, err)
		}
	}
	msg.Models = make([]ModelInfo, 0, len(raw))
	for i, r := range raw {
		m, err := parseModelState(r)
		if err != nil {
			msg.Skipped = append(msg.Skipped, fmt.Sprintf("entry %d: %v", i, err))
			continue
		}
		msg.Models = append(msg.Models, m)
	}
	return msg, nil
}

func parseModelState(data []byte) (ModelInfo, error) {
	var s orchestratorModelState
	if err := json.Unmarshal(data, &s); err != nil {
		return ModelInfo{}, err
	}
	if s.ModelID == "" {
		return ModelInfo{}, errors.New("missing model_id")
	}
	port, err := parsePort(s.Port)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("model %s: %w", s.ModelID, err)
	}
	m := ModelInfo{
		CruncherHotkey:       deref(s.Infos.CruncherHotkey),
		CruncherWalletPubkey: deref(s.Infos.CruncherWalletPubkey),
		DeploymentID:         s.DeploymentID,
		Host:                 deref(s.IP),
		ID:                   s.ModelID,
		Name:                 deref(s.Infos.ModelName),
		PlayerID:             deref(s.Infos.CruncherID),
		PlayerName:           cmpOr(deref(s.Infos.CruncherName), deref(s.Infos.CruncherID)),
		Port:                 port,
		State:                State(strings.ToUpper(s.State)),
	}
	if m.State == StateRunning && (m.Host == "" || m.Port == 0) {
		return ModelInfo{}, fmt.Errorf("model %s is RUNNING without ip and port", s.ModelID)
	}
	return m, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// parsePort accepts 8080, 8080.0, "8080" or null/absent (0).
func parsePort(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > math.MaxUint16 {
			return 0, fmt.Errorf("bad port %q", s)
		}
		return n, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("bad port %s", raw)
	}
	if f != math.Trunc(f) || f < 0 || f > math.MaxUint16 {
		return 0, fmt.Errorf("bad port %s", raw)
	}
	return int(f), nil
}

// OrchestratorURL builds ws://HOST:PORT/CRUNCH_ID.
func OrchestratorURL(host string, port int, crunchID string) string {
	u := url.URL{Scheme: "ws", Host: netJoin(host, port), Path: "/" + crunchID}
	return u.String()
}

func netJoin(host string, port int) string {
	return ModelInfo{Host: host, Port: port}.Addr()
}

// OrchestratorOptions configures an OrchestratorSource.
type OrchestratorOptions struct {
	// Logger; nil discards.
	Logger *slog.Logger

	// ReadLimit caps one frame. Default 16 MiB (the library's 32 KiB default
	// is too small for an init listing many models).
	ReadLimit int64

	// ReconnectDelay is the wait between connection attempts. Default 10s,
	// as the Python client.
	ReconnectDelay time.Duration

	// URL is ws://HOST:PORT/CRUNCH_ID (see OrchestratorURL). Required.
	URL string
}

// OrchestratorSource follows the model orchestrator's WebSocket. It rebuilds
// its model list from the init frame sent on every (re)connect, applies
// updates, reconnects forever, and sends failure reports (queued while
// disconnected).
type OrchestratorSource struct {
	logger *slog.Logger
	opts   OrchestratorOptions

	mu      sync.Mutex
	models  map[string]ModelInfo
	pending []FailureReport
	wake    chan struct{}
}

// NewOrchestratorSource validates opts.
func NewOrchestratorSource(opts OrchestratorOptions) (*OrchestratorSource, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("orchestrator URL %q must look like ws://host:port/crunch_id", opts.URL)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 16 << 20
	}
	if opts.ReconnectDelay <= 0 {
		opts.ReconnectDelay = 10 * time.Second
	}
	return &OrchestratorSource{
		logger: opts.Logger.With(slog.String("orchestrator", opts.URL)),
		models: map[string]ModelInfo{},
		opts:   opts,
		wake:   make(chan struct{}, 1),
	}, nil
}

// Run implements Source.
func (s *OrchestratorSource) Run(ctx context.Context, sink func([]ModelInfo)) error {
	for {
		err := s.session(ctx, sink)
		if ctx.Err() != nil {
			return nil
		}
		s.logger.WarnContext(ctx, "Orchestrator source: disconnected, will reconnect", slog.String("error", err.Error()), slog.Duration("delay", s.opts.ReconnectDelay))
		timer := time.NewTimer(s.opts.ReconnectDelay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// session runs one connection until it breaks.
func (s *OrchestratorSource) session(ctx context.Context, sink func([]ModelInfo)) error {
	conn, resp, err := websocket.Dial(ctx, s.opts.URL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("connecting to orchestrator: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(s.opts.ReadLimit)
	s.logger.InfoContext(ctx, "Orchestrator source: connected")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	writerDone := make(chan error, 1)
	go func() { writerDone <- s.writeReports(ctx, conn) }()

	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			cancel()
			<-writerDone
			return fmt.Errorf("reading from orchestrator: %w", err)
		}
		msg, err := ParseOrchestratorMessage(data)
		if err != nil {
			s.logger.WarnContext(ctx, "Orchestrator source: ignoring message", slog.String("error", err.Error()))
			continue
		}
		for _, skipped := range msg.Skipped {
			s.logger.WarnContext(ctx, "Orchestrator source: ignoring model entry", slog.String("reason", skipped))
		}
		if changed := s.apply(msg); changed {
			sink(s.snapshot())
		}
	}
}

// apply reconciles the model map: an init marks every model it does not
// list as STOPPED (messages may have been lost while disconnected).
func (s *OrchestratorSource) apply(msg OrchestratorMessage) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	switch msg.Event {
	case EventInit:
		listed := make(map[string]bool, len(msg.Models))
		for _, m := range msg.Models {
			listed[m.ID] = true
		}
		for id, m := range s.models {
			if !listed[id] && m.State != StateStopped {
				m.State = StateStopped
				s.models[id] = m
			}
		}
		changed = true // always publish after (re)connect
	case EventUpdate:
	default:
		return false
	}
	for _, m := range msg.Models {
		if old, ok := s.models[m.ID]; ok && old == m {
			continue
		}
		s.models[m.ID] = m
		changed = true
	}
	return changed
}

func (s *OrchestratorSource) snapshot() []ModelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ModelInfo, 0, len(s.models))
	for _, m := range s.models {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b ModelInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// ReportFailure queues a report; it is sent as soon as a connection is up.
// The host is filled in from the last known state when empty, because the
// orchestrator matches runs by (model_id, ip as it sent it).
func (s *OrchestratorSource) ReportFailure(_ context.Context, report FailureReport) error {
	s.mu.Lock()
	if report.Host == "" {
		report.Host = s.models[report.ModelID].Host
	}
	s.pending = append(s.pending, report)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// EncodeFailureReport builds the report_failure frame for one model (one per
// frame: the orchestrator aborts a batch at the first entry it cannot match).
func EncodeFailureReport(r FailureReport) ([]byte, error) {
	type entry struct {
		FailureCode   string  `json:"failure_code"`
		FailureReason *string `json:"failure_reason"`
		IP            string  `json:"ip"`
		ModelID       string  `json:"model_id"`
	}
	e := entry{FailureCode: string(r.Code), IP: r.Host, ModelID: r.ModelID}
	if r.Reason != "" {
		e.FailureReason = &r.Reason
	}
	return json.Marshal(struct {
		Data  []entry `json:"data"`
		Event string  `json:"event"`
	}{[]entry{e}, EventReportFailure})
}

func (s *OrchestratorSource) writeReports(ctx context.Context, conn *websocket.Conn) error {
	for {
		s.mu.Lock()
		var next FailureReport
		queued := len(s.pending) > 0
		if queued {
			next = s.pending[0]
		}
		s.mu.Unlock()
		if !queued {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.wake:
				continue
			}
		}
		frame, err := EncodeFailureReport(next)
		if err == nil {
			err = conn.Write(ctx, websocket.MessageText, frame)
			if err != nil {
				return fmt.Errorf("sending failure report: %w", err) // stays queued
			}
		}
		s.mu.Lock()
		s.pending = s.pending[1:]
		s.mu.Unlock()
		if err == nil {
			s.logger.InfoContext(ctx, "Orchestrator source: failure reported", slog.String("model_id", next.ModelID), slog.String("failure_code", string(next.Code)))
		}
	}
}
