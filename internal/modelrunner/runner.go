package modelrunner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// RunnerOptions configures a Runner.
type RunnerOptions struct {
	// Client configures every per-model client. Its Report is ignored: the
	// runner sends reports to Report below.
	Client ClientOptions

	// Logger; nil discards.
	Logger *slog.Logger

	// Report delivers failure reports, typically the Source's
	// ReportFailure. Nil only logs them.
	Report func(ctx context.Context, report FailureReport) error
}

// ModelStatus is one model as the runner sees it.
type ModelStatus struct {
	Info  ModelInfo
	Stats ClientStats
}

// Runner keeps one Client per running model and fans calls out to all ready
// models at once. Each call is bounded by its own model's deadline, so one
// slow model never delays the others beyond that.
type Runner struct {
	logger *slog.Logger
	opts   RunnerOptions
	wg     sync.WaitGroup

	workers *workerPool

	mu      sync.RWMutex
	clients map[string]*Client
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	ordered []*Client // clients sorted by model ID, rebuilt on Update
}

// NewRunner creates a Runner with no models; feed it with Update or Run.
func NewRunner(opts RunnerOptions) *Runner {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client.Logger == nil {
		opts.Client.Logger = logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{
		cancel:  cancel,
		clients: map[string]*Client{},
		ctx:     ctx,
		logger:  logger,
		opts:    opts,
		workers: newWorkerPool(workerIdle),
	}
	r.opts.Client.Report = r.report
	return r
}

func (r *Runner) report(ctx context.Context, report FailureReport) error {
	r.mu.RLock()
	send := r.opts.Report
	r.mu.RUnlock()
	if send == nil {
		r.logger.WarnContext(ctx, "Model runner: failure not reported (no reporter)", slog.String("model_id", report.ModelID), slog.String("failure_code", string(report.Code)))
		return nil
	}
	return send(ctx, report)
}

// Update reconciles the runner with a source snapshot. A RUNNING model that
// is new, or has a new deployment or address, gets a new client that connects
// and sets up in the background (it is not callable until then). The same
// run only has its details refreshed. Models not RUNNING, or missing from the
// snapshot, are dropped.
func (r *Runner) Update(models []ModelInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	var toClose []*Client
	seen := make(map[string]bool, len(models))
	for _, m := range models {
		if m.State != StateRunning || m.ID == "" {
			continue
		}
		seen[m.ID] = true
		if c, ok := r.clients[m.ID]; ok {
			old := c.Info()
			if old.DeploymentID == m.DeploymentID && old.Addr() == m.Addr() {
				c.UpdateInfo(m)
				continue
			}
			toClose = append(toClose, c)
			delete(r.clients, m.ID)
		}
		c, err := NewClient(m, r.opts.Client)
		if err != nil {
			r.logger.ErrorContext(r.ctx, "Model runner: creating client", slog.String("model_id", m.ID), slog.String("error", err.Error()))
			continue
		}
		r.clients[m.ID] = c
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := c.Setup(r.ctx); err != nil {
				r.logger.WarnContext(r.ctx, "Model runner: model setup failed", slog.String("model_id", m.ID), slog.String("error", err.Error()))
			}
		}()
	}
	for id, c := range r.clients {
		if !seen[id] {
			toClose = append(toClose, c)
			delete(r.clients, id)
		}
	}
	r.ordered = r.ordered[:0]
	for _, c := range r.clients {
		r.ordered = append(r.ordered, c)
	}
	slices.SortFunc(r.ordered, func(a, b *Client) int { return cmp.Compare(a.id, b.id) })
	for _, c := range toClose {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = c.Close()
		}()
	}
}

// Call encodes args once (see variant.Encode for the accepted Go types) and
// calls method on every ready model concurrently. Results are sorted by model
// ID; models not ready are absent. The error is only for arguments that
// cannot be encoded.
func (r *Runner) Call(ctx context.Context, method string, args ...any) ([]Result, error) {
	call, err := Prepare(method, args...)
	if err != nil {
		return nil, fmt.Errorf("calling %s: %w", method, err)
	}
	return r.CallPrepared(ctx, call), nil
}

// CallPrepared is Call with a prepared request (see PrepareCall), for callers
// that build Variants themselves or send keyword arguments. Every model is
// sent the same bytes.
func (r *Runner) CallPrepared(ctx context.Context, call *PreparedCall) []Result {
	return r.CallSequence(ctx, call)[0]
}

// CallSequence makes the prepared calls on every ready model in order, each
// model on its own: a model gets its next call as soon as it has answered the
// previous one, without waiting for the other models. Every model still sees
// the calls in order, one at a time, as with one fan-out per call; only the
// barrier between the fan-outs is gone, so a tick costs the slowest model's
// chain rather than the sum of the slowest answers of each step.
//
// results[i] holds the answers to calls[i], sorted by model ID. A model that
// is no longer ready after a call (retired by its answer, say) gets no more
// calls and is absent from the later lists, as it would be from a later
// fan-out.
func (r *Runner) CallSequence(ctx context.Context, calls ...*PreparedCall) [][]Result {
	ready := r.ready()
	f := &fanout{
		calls:  calls,
		chains: make([][]Result, len(ready)),
		ctx:    ctx,
		ready:  ready,
		slots:  make([]Result, len(ready)*len(calls)),
	}
	f.wg.Add(len(ready))
	run := f.run // one method value for the whole fan-out
	for i := range ready {
		r.workers.do(poolJob{run: run, i: i})
	}
	f.wg.Wait()
	if len(calls) == 1 {
		// Every ready model answered the first call: the slots are the
		// list, in order.
		return [][]Result{f.slots}
	}
	results := make([][]Result, len(calls))
	for j := range calls {
		results[j] = make([]Result, 0, len(ready))
		for _, chain := range f.chains {
			if j < len(chain) {
				results[j] = append(results[j], chain[j])
			}
		}
	}
	return results
}

// fanout is one CallSequence. Its jobs are an index into ready rather than
// a closure per model, and the models' chains share one array: a fan-out of
// a hundred models then allocates a handful of objects instead of two
// hundred.
type fanout struct {
	calls  []*PreparedCall
	chains [][]Result // chains[i]: ready[i]'s answers, in slots
	ctx    context.Context
	ready  []*Client
	slots  []Result
	wg     sync.WaitGroup
}

// run makes the calls on ready[i], in order, while it stays ready.
func (f *fanout) run(i int) {
	defer f.wg.Done()
	c, n := f.ready[i], len(f.calls)
	chain := f.slots[i*n : i*n : (i+1)*n]
	for j, call := range f.calls {
		if j > 0 && !c.Ready() {
			break
		}
		chain = append(chain, c.CallPrepared(f.ctx, call))
	}
	f.chains[i] = chain
}

// ready lists the ready clients, sorted by model ID.
func (r *Runner) ready() []*Client {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ready := make([]*Client, 0, len(r.ordered))
	for _, c := range r.ordered {
		if c.Ready() {
			ready = append(ready, c)
		}
	}
	return ready
}

// Models lists every model the runner holds, sorted by ID, with its state
// and counters.
func (r *Runner) Models() []ModelStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]ModelStatus, 0, len(r.ordered))
	for _, c := range r.ordered {
		out = append(out, ModelStatus{Info: c.Info(), Stats: c.Stats()})
	}
	return out
}

// Run feeds the runner from src until ctx ends. onModels, if not nil, sees
// each snapshot first (the lead mirrors it into the models table). Failure
// reports go to src unless RunnerOptions.Report was set.
func (r *Runner) Run(ctx context.Context, src Source, onModels func([]ModelInfo)) error {
	r.mu.Lock()
	if r.opts.Report == nil {
		r.opts.Report = src.ReportFailure
	}
	r.mu.Unlock()
	err := src.Run(ctx, func(models []ModelInfo) {
		if onModels != nil {
			onModels(models)
		}
		r.Update(models)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("running model source: %w", err)
	}
	return nil
}

// Close drops every client and waits for background work.
func (r *Runner) Close() {
	r.mu.Lock()
	r.closed = true
	clients := r.ordered
	r.ordered, r.clients = nil, map[string]*Client{}
	r.mu.Unlock()
	r.cancel()
	for _, c := range clients {
		_ = c.Close()
	}
	r.wg.Wait()
	r.workers.close()
}

// workerIdle is about how long a fan-out goroutine waits for more work.
const workerIdle = time.Minute

// workerPool runs each job at once, on an idle goroutine if there is one and
// on a new one otherwise, so a slow model never queues behind another. Reusing
// goroutines saves the stack growth a fresh goroutine pays on every gRPC call,
// a noticeable share of a fan-out's CPU.
//
// Idle workers exit after one to two idle periods. One pool-wide timer
// marks the periods by closing retire, rather than a timer per worker in
// each worker's select: blocking on a timer's channel costs a timer update
// every call.
type workerPool struct {
	jobs    chan poolJob // unbuffered: a send succeeds only to an idle worker
	idle    time.Duration
	closed  atomic.Bool
	workers atomic.Int32 // running workers

	mu     sync.Mutex
	retire chan struct{} // closed at the end of each period, and by close
	period *time.Timer   // ends the period; armed while there are workers
}

func newWorkerPool(idle time.Duration) *workerPool {
	return &workerPool{jobs: make(chan poolJob), idle: idle, retire: make(chan struct{})}
}

// poolJob is run(i): a job is sent by value, so that a fan-out's jobs share
// one function value instead of a closure each.
type poolJob struct {
	run func(i int)
	i   int
}

func (p *workerPool) do(job poolJob) {
	select {
	case p.jobs <- job:
	default:
		p.workers.Add(1)
		p.mu.Lock()
		if p.period == nil && !p.closed.Load() {
			p.period = time.AfterFunc(p.idle, p.endPeriod)
		}
		p.mu.Unlock()
		go p.work(job)
	}
}

// endPeriod tells the workers a period ended and starts the next one while
// there are workers.
func (p *workerPool) endPeriod() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return
	}
	close(p.retire)
	p.retire = make(chan struct{})
	if p.workers.Load() > 0 {
		p.period.Reset(p.idle)
	} else {
		p.period = nil
	}
}

func (p *workerPool) currentRetire() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retire
}

// work runs job, then further jobs until a whole period passes without one.
func (p *workerPool) work(job poolJob) {
	defer p.workers.Add(-1)
	retire := p.currentRetire()
	job.run(job.i)
	worked := true // a job ran in the current period
	for {
		select {
		case job := <-p.jobs:
			job.run(job.i)
			worked = true
		case <-retire:
			if !worked || p.closed.Load() {
				return
			}
			worked = false
			retire = p.currentRetire()
		}
	}
}

func (p *workerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	if p.period != nil {
		p.period.Stop()
	}
	close(p.retire)
}
