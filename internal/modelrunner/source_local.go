package modelrunner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/crunchnode/crunch-node/internal/grpcwire"
)

// LocalModel is one entry of a models.dev.yml-style file: the orchestrator's
// dev fields plus how to run the model here.
type LocalModel struct {
	// Args are extra command-line arguments for the host (for example the
	// model host's fault flags, to demo a misbehaving model).
	Args         []string `yaml:"args"`
	CodeDir      string   `yaml:"code_dir"`
	CrunchID     string   `yaml:"crunch_id"`
	CruncherID   string   `yaml:"cruncher_id"`
	CruncherName string   `yaml:"cruncher_name"`
	// DesiredState is RUNNING (default) or STOPPED.
	DesiredState State  `yaml:"desired_state"`
	ID           string `yaml:"id"`
	// Model names the built-in model for runtime go; defaults to ModelName.
	Model        string `yaml:"model"`
	ModelName    string `yaml:"model_name"`
	Runtime      string `yaml:"runtime"`
	SubmissionID string `yaml:"submission_id"`
}

// LoadLocalModels reads and validates a models.dev.yml-style file.
func LoadLocalModels(path string) ([]LocalModel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading local models file: %w", err)
	}
	var file struct {
		Models []LocalModel `yaml:"models"`
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return nil, fmt.Errorf("parsing local models file %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i := range file.Models {
		m := &file.Models[i]
		if m.ID == "" {
			return nil, fmt.Errorf("local models file %s: models[%d]: id is required", path, i)
		}
		if seen[m.ID] {
			return nil, fmt.Errorf("local models file %s: model %s listed twice", path, m.ID)
		}
		seen[m.ID] = true
		m.DesiredState = State(strings.ToUpper(string(m.DesiredState)))
		switch m.DesiredState {
		case "":
			m.DesiredState = StateRunning
		case StateRunning, StateStopped:
		default:
			return nil, fmt.Errorf("local models file %s: model %s: desired_state must be RUNNING or STOPPED, got %q", path, m.ID, m.DesiredState)
		}
		if m.DesiredState == StateRunning && m.Runtime == "" {
			return nil, fmt.Errorf("local models file %s: model %s: runtime is required", path, m.ID)
		}
		if m.Model == "" {
			m.Model = m.ModelName
		}
	}
	return file.Models, nil
}

// CommandFunc builds the command that hosts model m on port (on the local
// source's host). One is registered per runtime.
type CommandFunc func(m LocalModel, port int) (*exec.Cmd, error)

// GoRuntime runs the built-in Go model host: `binary args... --model M --port
// N` followed by the model's own Args. The node passes its own executable and
// "model-server".
func GoRuntime(binary string, args ...string) CommandFunc {
	return func(m LocalModel, port int) (*exec.Cmd, error) {
		if m.Model == "" {
			return nil, fmt.Errorf("model %s: no model name for the go runtime", m.ID)
		}
		full := append(slices.Clone(args), "--model", m.Model, "--port", strconv.Itoa(port))
		return exec.Command(binary, append(full, m.Args...)...), nil //nolint:gosec // the operator's own binary
	}
}

// LocalOptions configures a LocalSource.
type LocalOptions struct {
	// File is the models.dev.yml-style file. Required.
	File string

	// Host the model hosts listen on and are dialed at. Default 127.0.0.1.
	Host string

	// Logger; nil discards. Model host output is logged through it too.
	Logger *slog.Logger

	// Now stamps deployment IDs; nil means time.Now.
	Now func() time.Time

	// PollInterval is how often File is re-read for changes. Default 5s;
	// negative never re-reads.
	PollInterval time.Duration

	// Runtimes maps the runtime field to how to start a host. Required.
	Runtimes map[string]CommandFunc

	// StartTimeout bounds waiting for a new host to answer SERVING. Default
	// 30s.
	StartTimeout time.Duration

	// StopTimeout is how long a host gets to exit after SIGTERM before it is
	// killed. Default 5s.
	StopTimeout time.Duration
}

// LocalSource is a small embedded orchestrator for development: it starts a
// model host process per RUNNING entry of a models.dev.yml-style file on a
// free port, announces it once it answers health checks, stops it on failure
// reports, file changes or shutdown, and does not restart a failed model
// until its entry changes.
type LocalSource struct {
	events chan localEvent
	logger *slog.Logger
	opts   LocalOptions

	runMu   sync.Mutex
	running context.Context // non-nil while Run runs; Done when it stops
}

// NewLocalSource validates opts. The file is first read by Run.
func NewLocalSource(opts LocalOptions) (*LocalSource, error) {
	if opts.File == "" {
		return nil, errors.New("local source: File is required")
	}
	if len(opts.Runtimes) == 0 {
		return nil, errors.New("local source: no Runtimes")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 5 * time.Second
	}
	return &LocalSource{events: make(chan localEvent, 16), logger: opts.Logger, opts: opts}, nil
}

type localEvent struct {
	err    error
	gen    int
	id     string
	kind   localEventKind
	report FailureReport
	reply  chan error
}

type localEventKind int

const (
	localExited localEventKind = iota + 1
	localReady
	localReport
	localStartFailed
)

type localProc struct {
	active      bool // started and not asked to stop
	attempt     int  // how many times it was started, from 1
	cancelStart context.CancelFunc
	cmd         *exec.Cmd
	done        chan struct{} // closed once the process has exited
	gen         int
	info        ModelInfo
	spec        LocalModel
}

// localRun is the state of one Run, owned by its goroutine.
type localRun struct {
	ctx         context.Context
	gen         int
	procs       map[string]*localProc
	quarantined map[string]LocalModel
	s           *LocalSource
	stopping    sync.WaitGroup
}

// Run implements Source.
func (s *LocalSource) Run(ctx context.Context, sink func([]ModelInfo)) error {
	specs, err := LoadLocalModels(s.opts.File)
	if err != nil {
		return err
	}
	stamp := fileStamp(s.opts.File)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.runMu.Lock()
	if s.running != nil {
		s.runMu.Unlock()
		return errors.New("local source: already running")
	}
	s.running = runCtx
	s.runMu.Unlock()
	defer func() {
		s.runMu.Lock()
		s.running = nil
		s.runMu.Unlock()
	}()

	r := &localRun{ctx: runCtx, procs: map[string]*localProc{}, quarantined: map[string]LocalModel{}, s: s}
	defer r.stopAll()
	r.reconcile(specs)
	sink(r.snapshot())

	var poll <-chan time.Time
	if s.opts.PollInterval > 0 {
		ticker := time.NewTicker(s.opts.PollInterval)
		defer ticker.Stop()
		poll = ticker.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll:
			if st := fileStamp(s.opts.File); st != stamp {
				specs, err := LoadLocalModels(s.opts.File)
				if err != nil {
					s.logger.ErrorContext(ctx, "Local source: keeping previous models", slog.String("error", err.Error()))
					continue
				}
				stamp = st
				r.reconcile(specs)
				sink(r.snapshot())
			}
		case ev := <-s.events:
			if r.handle(ev) {
				sink(r.snapshot())
			}
		}
	}
}

func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
}

// ReportFailure stops the model's host and keeps it stopped until its entry
// in the file changes, as the orchestrator quarantines failed models.
func (s *LocalSource) ReportFailure(ctx context.Context, report FailureReport) error {
	s.runMu.Lock()
	running := s.running
	s.runMu.Unlock()
	if running == nil {
		return errors.New("local source: not running")
	}
	reply := make(chan error, 1)
	select {
	case s.events <- localEvent{kind: localReport, report: report, reply: reply}:
	case <-ctx.Done():
		return ctx.Err()
	case <-running.Done():
		return errors.New("local source: stopped")
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *localRun) send(ev localEvent) {
	select {
	case r.s.events <- ev:
	case <-r.ctx.Done():
	}
}

func (r *localRun) reconcile(specs []LocalModel) {
	seen := map[string]bool{}
	for _, spec := range specs {
		seen[spec.ID] = true
		p := r.procs[spec.ID]
		if spec.DesiredState != StateRunning {
			if p != nil {
				r.stop(p, "desired state STOPPED")
			}
			r.procs[spec.ID] = r.stoppedProc(spec, p)
			continue
		}
		if q, ok := r.quarantined[spec.ID]; ok && reflect.DeepEqual(q, spec) {
			continue
		}
		delete(r.quarantined, spec.ID)
		if p != nil && p.active && reflect.DeepEqual(p.spec, spec) {
			continue
		}
		if p != nil && p.active {
			r.stop(p, "entry changed")
		}
		r.start(spec, 1)
	}
	for id, p := range r.procs {
		if !seen[id] && p.info.State != StateStopped {
			r.stop(p, "removed from file")
		}
	}
}

func (r *localRun) stoppedProc(spec LocalModel, prev *localProc) *localProc {
	p := &localProc{spec: spec, info: specInfo(spec)}
	if prev != nil {
		p.info.DeploymentID, p.info.Host, p.info.Port = prev.info.DeploymentID, prev.info.Host, prev.info.Port
	}
	p.info.State = StateStopped
	return p
}

func specInfo(spec LocalModel) ModelInfo {
	return ModelInfo{
		ID:         spec.ID,
		Name:       spec.ModelName,
		PlayerID:   spec.CruncherID,
		PlayerName: cmpOr(spec.CruncherName, spec.CruncherID),
	}
}

// startAttempts is how many times a host that exits before it is serving is
// started, each time on a new port: a port is found free and only then handed
// to the process, so another socket can take it in between.
const startAttempts = 3

func (r *localRun) start(spec LocalModel, attempt int) {
	r.gen++
	p := &localProc{attempt: attempt, gen: r.gen, info: specInfo(spec), spec: spec}
	r.procs[spec.ID] = p
	logger := r.s.logger.With(slog.String("model_id", spec.ID))
	fail := func(err error) {
		logger.ErrorContext(r.ctx, "Local source: cannot start model", slog.String("error", err.Error()))
		p.info.State = StateStopped
		r.quarantined[spec.ID] = spec
	}
	run, ok := r.s.opts.Runtimes[spec.Runtime]
	if !ok {
		fail(fmt.Errorf("unknown runtime %q", spec.Runtime))
		return
	}
	port, err := freePort(r.s.opts.Host)
	if err != nil {
		fail(err)
		return
	}
	cmd, err := run(spec, port)
	if err != nil {
		fail(err)
		return
	}
	cmd.Stdout = &lineLogger{logger: logger, stream: "stdout"}
	cmd.Stderr = &lineLogger{logger: logger, stream: "stderr"}
	dieWithNode(cmd)
	if err := cmd.Start(); err != nil {
		fail(fmt.Errorf("starting %s: %w", cmd.Path, err))
		return
	}
	now := r.s.opts.Now()
	p.active, p.cmd, p.done = true, cmd, make(chan struct{})
	p.info.Host, p.info.Port, p.info.State = r.s.opts.Host, port, StateStarting
	p.info.DeploymentID = spec.ID + "_" + strings.ReplaceAll(now.Format("20060102_150405.000"), ".", "_")
	logger.InfoContext(r.ctx, "Local source: started model host", slog.Int("pid", cmd.Process.Pid), slog.String("addr", p.info.Addr()))

	// The goroutines get copies: p belongs to the event loop.
	addr, done, gen := p.info.Addr(), p.done, p.gen
	go func() {
		err := cmd.Wait()
		close(done)
		r.send(localEvent{kind: localExited, id: spec.ID, gen: gen, err: err})
	}()
	startCtx, cancel := context.WithTimeout(r.ctx, r.s.opts.StartTimeout)
	p.cancelStart = cancel
	go func() {
		defer cancel()
		err := waitServing(startCtx, addr)
		if err != nil {
			r.send(localEvent{kind: localStartFailed, id: spec.ID, gen: gen, err: err})
			return
		}
		r.send(localEvent{kind: localReady, id: spec.ID, gen: gen})
	}()
}

// handle applies one event and says whether the snapshot changed.
func (r *localRun) handle(ev localEvent) bool {
	if ev.kind == localReport {
		ev.reply <- r.report(ev.report)
		return true
	}
	p := r.procs[ev.id]
	if p == nil || p.gen != ev.gen {
		return false // about a process we already replaced
	}
	logger := r.s.logger.With(slog.String("model_id", ev.id))
	switch ev.kind {
	case localReady:
		if !p.active {
			return false
		}
		p.info.State = StateRunning
		logger.InfoContext(r.ctx, "Local source: model host serving", slog.String("addr", p.info.Addr()))
	case localStartFailed:
		if !p.active {
			return false
		}
		logger.ErrorContext(r.ctx, "Local source: model host did not become healthy", slog.String("error", ev.err.Error()))
		r.stop(p, "not healthy")
		r.quarantined[p.spec.ID] = p.spec
	case localExited:
		if !p.active {
			return false
		}
		if p.info.State == StateStarting && p.attempt < startAttempts {
			logger.WarnContext(r.ctx, "Local source: model host exited while starting, starting it again", slog.Int("attempt", p.attempt), slog.Any("error", ev.err))
			p.cancelStart()
			r.start(p.spec, p.attempt+1)
			return true
		}
		p.active = false
		p.info.State = StateStopped
		r.quarantined[p.spec.ID] = p.spec
		logger.ErrorContext(r.ctx, "Local source: model host exited", slog.Any("error", ev.err))
	}
	return true
}

func (r *localRun) report(report FailureReport) error {
	p := r.procs[report.ModelID]
	if p == nil {
		return fmt.Errorf("local source: unknown model %s", report.ModelID)
	}
	if report.DeploymentID != "" && report.DeploymentID != p.info.DeploymentID {
		return nil // about an earlier run
	}
	r.s.logger.WarnContext(r.ctx, "Local source: stopping failed model", slog.String("model_id", report.ModelID), slog.String("failure_code", string(report.Code)), slog.String("reason", report.Reason))
	r.stop(p, "failure reported: "+string(report.Code))
	r.quarantined[p.spec.ID] = p.spec
	return nil
}

// stop asks the process to exit (SIGTERM, then SIGKILL after StopTimeout)
// without blocking the event loop.
func (r *localRun) stop(p *localProc, why string) {
	p.info.State = StateStopped
	if !p.active {
		return
	}
	p.active = false
	p.cancelStart()
	r.s.logger.InfoContext(r.ctx, "Local source: stopping model host", slog.String("model_id", p.spec.ID), slog.String("why", why))
	proc, done := p.cmd.Process, p.done
	r.stopping.Add(1)
	go func() {
		defer r.stopping.Done()
		_ = proc.Signal(syscall.SIGTERM)
		timer := time.NewTimer(r.s.opts.StopTimeout)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			_ = proc.Kill()
			<-done
		}
	}()
}

func (r *localRun) stopAll() {
	for _, p := range r.procs {
		r.stop(p, "source stopping")
	}
	r.stopping.Wait()
}

func (r *localRun) snapshot() []ModelInfo {
	out := make([]ModelInfo, 0, len(r.procs))
	for _, p := range r.procs {
		out = append(out, p.info)
	}
	slices.SortFunc(out, func(a, b ModelInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func freePort(host string) (int, error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	return port, lis.Close()
}

// waitServing polls the standard health service until it answers SERVING.
func waitServing(ctx context.Context, addr string) error {
	var d net.Dialer
	conn := grpcwire.NewClientConn(grpcwire.ClientConnOptions{
		Authority: addr,
		Dial:      func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) },
	})
	defer conn.Close()
	req, err := proto.Marshal(&healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("encoding health check: %w", err)
	}
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var last error
	for {
		var resp healthpb.HealthCheckResponse
		answer, err := conn.Invoke(ctx, &grpcwire.Request{Method: methodHealth, Message: req, Timeout: time.Second})
		if err == nil {
			err = proto.Unmarshal(answer.Message, &resp)
		}
		switch {
		case err != nil:
			last = err
		case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return nil
		default:
			last = fmt.Errorf("health status %s", resp.GetStatus())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to serve: %w (last: %v)", addr, ctx.Err(), last)
		case <-ticker.C:
		}
	}
}

// lineLogger logs a child process's output line by line.
type lineLogger struct {
	buf    bytes.Buffer
	logger *slog.Logger
	mu     sync.Mutex
	stream string
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line) // incomplete: keep for the next write
			return len(p), nil
		}
		l.logger.Info("Local source: model host output", slog.String("stream", l.stream), slog.String("line", strings.TrimRight(line, "\r\n")))
	}
}
