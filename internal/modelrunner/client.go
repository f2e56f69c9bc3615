package modelrunner

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crunchnode/crunch-node/internal/grpcwire"
	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// Application status codes a model runner answers with.
const (
	CodeBadImplementation  = "BAD_IMPLEMENTATION"
	CodeFailedPrecondition = "FAILED_PRECONDITION"
	CodeInvalidArgument    = "INVALID_ARGUMENT"
	CodeModelFailed        = "MODEL_FAILED"
	CodeSetupFailed        = "SETUP_FAILED"
	CodeSuccess            = "SUCCESS"
)

// Status is the outcome of one call, as the predict role records it.
type Status string

// Call outcomes. FAILED means the model answered but not usefully; TIMEOUT
// means it did not answer in time (or could not be reached, or was skipped).
const (
	StatusFailed  Status = "FAILED"
	StatusSuccess Status = "SUCCESS"
	StatusTimeout Status = "TIMEOUT"
)

// Reasons for a TIMEOUT without a gRPC error. They are errors so callers can
// tell them apart with errors.Is.
var (
	// ErrBusy: a previous call to the same model is still in flight. The
	// model runner executes one call at a time and would refuse a second
	// one, so it is not sent.
	ErrBusy = errors.New("model is busy with a previous call")
	// ErrCoolingDown: the model timed out recently and this call is skipped
	// to let it recover.
	ErrCoolingDown = errors.New("model is cooling down after timeouts")
	// ErrNotReady: the model is not connected and set up (yet or any more).
	ErrNotReady = errors.New("model is not ready")
)

// StatusError is a non-SUCCESS application status answered by a model.
type StatusError struct {
	Code    string
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Result is one model's answer to one call.
type Result struct {
	// Code is the application status code (e.g. MODEL_FAILED) or, for
	// transport errors, the gRPC code name (e.g. DeadlineExceeded).
	Code string
	// Err says why Status is not SUCCESS.
	Err error
	// ExecTime is measured on the client, from the call to its answer.
	ExecTime time.Duration
	// Model is the model's details when it was called. It is shared by every result
	// of the client until its details change, and never modified.
	Model  *ModelInfo
	Status Status
	// Type is the Variant tag of the answer (NONE when the method returned
	// nothing).
	Type mrpb.VariantType
	// Value is the decoded answer; see variant.Decode for the Go types. JSON
	// answers may contain NaN/±Inf floats; check them with
	// variant.CheckFinite.
	Value any
}

// ClientState is where a client is in its life.
type ClientState string

// Client states.
const (
	// ClientClosed: Close was called.
	ClientClosed ClientState = "CLOSED"
	// ClientPending: connecting and calling Setup; not callable.
	ClientPending ClientState = "PENDING"
	// ClientReady: set up and callable.
	ClientReady ClientState = "READY"
	// ClientRetired: given up on and reported; not callable until the
	// source brings a new run.
	ClientRetired ClientState = "RETIRED"
)

// ClientStats is a snapshot of a client's bookkeeping.
type ClientStats struct {
	ConsecutiveFailures int
	ConsecutiveTimeouts int
	// Cooldown is how many upcoming calls will be skipped.
	Cooldown int
	// Reconnects counts channel replacements after failed health checks
	// and re-Setups after FAILED_PRECONDITION.
	Reconnects int
	// Reported is the failure code reported for this run, if any.
	Reported FailureCode
	State    ClientState
}

// ClientOptions configures per-model clients. Zero values take the defaults
// named on each field (those of crunch-node, not of the Python library).
type ClientOptions struct {
	// BaseClassName is the Setup className: the dotted name of the base
	// class the participant subclassed. Default "cruncher.ModelBaseClass".
	BaseClassName string

	// CallTimeout is the deadline of each Call. Default 60s, like
	// MODEL_RUNNER_TIMEOUT_SECONDS.
	CallTimeout time.Duration

	// ConnectTimeout bounds waiting for the main channel to connect, per Setup
	// attempt. Default 10s.
	ConnectTimeout time.Duration

	// Dialer opens the connection to a model's address; nil dials TCP.
	// Tests use it for in-memory connections.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)

	// HealthTimeout is the deadline of a health check. Default 10s.
	HealthTimeout time.Duration

	// Logger; nil discards.
	Logger *slog.Logger

	// MaxConsecutiveFailures: once the failure count exceeds it, the model
	// is reported MULTIPLE_FAILED. Default 100.
	MaxConsecutiveFailures int

	// MaxConsecutiveTimeouts: once the timeout count exceeds it, the model
	// is reported MULTIPLE_TIMEOUT. Default 100.
	MaxConsecutiveTimeouts int

	// MaxResponseBytes caps an answer's size. Default 4 MiB, Python's limit.
	MaxResponseBytes int

	// Now is the clock for ExecTime; nil means time.Now.
	Now func() time.Time

	// Report delivers failure reports, typically Source.ReportFailure. Nil
	// only logs them (like the Python client's report_failure=False).
	Report func(ctx context.Context, report FailureReport) error

	// Security secures the connections. Nil means Insecure.
	Security Security

	// SetupAttempts is how many times connect+Setup is tried. Default 5.
	SetupAttempts int

	// SetupBackoff is the wait after the first failed attempt; it doubles
	// after each. Default 2s.
	SetupBackoff time.Duration

	// SetupTimeout is the deadline of one Setup RPC. Default 60s (the Python
	// client has none, so a hung constructor blocks it forever).
	SetupTimeout time.Duration
}

func (o ClientOptions) withDefaults() ClientOptions {
	if o.BaseClassName == "" {
		o.BaseClassName = "cruncher.ModelBaseClass"
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 60 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxConsecutiveFailures <= 0 {
		o.MaxConsecutiveFailures = 100
	}
	if o.MaxConsecutiveTimeouts <= 0 {
		o.MaxConsecutiveTimeouts = 100
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 4 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Security == nil {
		o.Security = Insecure{}
	}
	if o.SetupAttempts <= 0 {
		o.SetupAttempts = 5
	}
	if o.SetupBackoff <= 0 {
		o.SetupBackoff = 2 * time.Second
	}
	if o.SetupTimeout <= 0 {
		o.SetupTimeout = 60 * time.Second
	}
	return o
}

// reportTimeout bounds delivering one failure report.
const reportTimeout = 10 * time.Second

// Client talks to one model run. It keeps at most one call in flight, keeps
// the failure and timeout bookkeeping of the protocol, health-checks the model
// on a separate channel, and reports the model when it gives up on it.
type Client struct {
	answers  mrpb.CallResponseDecoder // guarded by inflight
	cancel   context.CancelFunc
	ctx      context.Context
	id       string     // immutable copy of info.ID, readable without mu
	inflight sync.Mutex // held for the duration of one Call RPC; TryLock only
	logger   *slog.Logger
	opts     ClientOptions
	repairs  atomic.Bool // a health check or re-Setup is under way
	wg       sync.WaitGroup

	mu         sync.Mutex // guards everything below
	conn       *grpcwire.ClientConn
	cooldown   int
	failures   int
	healthConn *grpcwire.ClientConn
	info       *ModelInfo // replaced, never modified: results share it
	reconnects int
	reported   FailureCode
	state      ClientState
	timeouts   int
	transport  Transport
}

// NewClient prepares a client for one model run. Connections are made lazily;
// call Setup before Call.
func NewClient(info ModelInfo, opts ClientOptions) (*Client, error) {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cancel: cancel,
		ctx:    ctx,
		id:     info.ID,
		info:   &info,
		logger: opts.Logger.With(slog.String("model_id", info.ID), slog.String("deployment_id", info.DeploymentID)),
		opts:   opts,
		state:  ClientPending,
	}
	if err := c.dialLocked(); err != nil {
		cancel()
		return nil, err
	}
	return c, nil
}

func (c *Client) dialLocked() error {
	transport, err := c.opts.Security.Transport(*c.info)
	if err != nil {
		return fmt.Errorf("securing connection to model %s: %w", c.info.ID, err)
	}
	addr := c.info.Addr()
	if transport.Authority == "" {
		transport.Authority = addr
	}
	opts := grpcwire.ClientConnOptions{
		Authority:      transport.Authority,
		Dial:           c.dialFunc(addr, transport.TLS),
		MaxRecvMsgSize: c.opts.MaxResponseBytes,
		TLS:            transport.TLS != nil,
	}
	// Health checks get their own connection so that a model busy with a
	// long call still answers them. It is dialled on the first check, which
	// few models ever need.
	c.conn, c.healthConn = grpcwire.NewClientConn(opts), grpcwire.NewClientConn(opts)
	c.transport = transport
	return nil
}

// dialFunc opens a connection to addr, with the TLS handshake done when the
// transport asks for TLS.
func (c *Client) dialFunc(addr string, tlsCfg *tls.Config) grpcwire.DialFunc {
	dial := c.opts.Dialer
	if dial == nil {
		var d net.Dialer
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	if tlsCfg == nil {
		return func(ctx context.Context) (net.Conn, error) { return dial(ctx, addr) }
	}
	tlsCfg = tlsCfg.Clone()
	tlsCfg.NextProtos = []string{"h2"}
	if tlsCfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		tlsCfg.ServerName = host
	}
	return func(ctx context.Context) (net.Conn, error) {
		nc, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(nc, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		return tc, nil
	}
}

// Full method names of the protocol.
const (
	methodCall   = "/" + serviceName + "/Call"
	methodHealth = "/grpc.health.v1.Health/Check"
	methodSetup  = "/" + serviceName + "/Setup"
)

// invoke makes one RPC with the transport's metadata and, but for health
// checks, its answer verification.
func (c *Client) invoke(ctx context.Context, conn *grpcwire.ClientConn, transport Transport, method string, msg []byte, timeout time.Duration) (*grpcwire.Answer, error) {
	req := &grpcwire.Request{Method: method, Message: msg, Timeout: timeout}
	if transport.Metadata != nil {
		md, err := transport.Metadata()
		if err != nil {
			return nil, err
		}
		req.Metadata = md
	}
	answer, err := conn.Invoke(ctx, req)
	if err != nil {
		return nil, err
	}
	if transport.Verify != nil && method != methodHealth {
		if err := transport.Verify(answer); err != nil {
			return nil, err
		}
	}
	return answer, nil
}

// Info returns the model this client talks to.
func (c *Client) Info() ModelInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.info
}

// infoShared returns the client's details to share with a result.
func (c *Client) infoShared() *ModelInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// UpdateInfo refreshes names and other details of the same run (same
// deployment and address); it does not reconnect.
func (c *Client) UpdateInfo(info ModelInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.info = &info
}

// Stats returns the client's bookkeeping.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ClientStats{
		ConsecutiveFailures: c.failures,
		ConsecutiveTimeouts: c.timeouts,
		Cooldown:            c.cooldown,
		Reconnects:          c.reconnects,
		Reported:            c.reported,
		State:               c.state,
	}
}

// Ready reports whether the model can be called.
func (c *Client) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == ClientReady
}

// Close drops the connections and stops background work. A closed client is
// never called again.
func (c *Client) Close() error {
	c.mu.Lock()
	c.state = ClientClosed
	conn, healthConn := c.conn, c.healthConn
	c.mu.Unlock()
	// Closing first fails a call or health check in flight at once.
	c.cancel()
	c.wg.Wait()
	return errors.Join(conn.Close(), healthConn.Close())
}

// setupError is an application-level Setup refusal; retrying will not help.
type setupError struct{ *StatusError }

// Setup connects and creates the model instance, retrying transport failures
// with doubling backoff. On success the client is READY. On failure it is
// RETIRED and reported: BAD_IMPLEMENTATION as such, other refusals as
// MULTIPLE_FAILED, and unreachable models as CONNECTION_FAILED.
func (c *Client) Setup(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()

	err := c.setupWithRetries(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != ClientPending {
		return fmt.Errorf("setting up model %s: client is %s", c.info.ID, c.state)
	}
	if err == nil {
		c.state = ClientReady
		c.logger.InfoContext(ctx, "Model runner: model ready", slog.String("addr", c.info.Addr()))
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("setting up model %s: %w", c.info.ID, ctx.Err())
	}
	var se setupError
	switch {
	case errors.As(err, &se) && se.Code == CodeBadImplementation:
		c.retireLocked(FailureBadImplementation, se.Error())
	case errors.As(err, &se):
		c.retireLocked(FailureMultipleFailed, se.Error())
	default:
		c.retireLocked(FailureConnectionFailed, err.Error())
	}
	return fmt.Errorf("setting up model %s: %w", c.info.ID, err)
}

func (c *Client) setupWithRetries(ctx context.Context) error {
	wait := c.opts.SetupBackoff
	var err error
	for attempt := 1; ; attempt++ {
		err = c.setupOnce(ctx)
		var se setupError
		// A failed ownership proof is static: retrying cannot fix it.
		if err == nil || errors.As(err, &se) || isServerAuthError(err) || attempt >= c.opts.SetupAttempts {
			return err
		}
		c.logger.WarnContext(ctx, "Model runner: setup attempt failed", slog.Int("attempt", attempt), slog.String("error", err.Error()))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait *= 2
	}
}

func (c *Client) setupOnce(ctx context.Context) error {
	c.mu.Lock()
	conn, transport := c.conn, c.transport
	c.mu.Unlock()

	// Connecting first, within ConnectTimeout, tells an unreachable model
	// (refused, TLS failure) from one whose Setup is slow.
	connectCtx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	err := conn.Connect(connectCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", c.info.Addr(), err)
	}
	req, err := proto.Marshal(&mrpb.SetupRequest{ClassName: c.opts.BaseClassName})
	if err != nil {
		return fmt.Errorf("encoding Setup: %w", err)
	}
	answer, err := c.invoke(ctx, conn, transport, methodSetup, req, c.opts.SetupTimeout)
	if err != nil {
		return fmt.Errorf("calling Setup: %w", err)
	}
	var resp mrpb.SetupResponse
	if err := proto.Unmarshal(answer.Message, &resp); err != nil {
		return fmt.Errorf("decoding Setup's answer: %w", err)
	}
	if code := resp.GetStatus().GetCode(); code != CodeSuccess {
		return setupError{&StatusError{Code: code, Message: resp.GetStatus().GetMessage()}}
	}
	return nil
}

// serviceName is the gRPC service of the model runner protocol.
const serviceName = "dynamic_subclass.DynamicSubclassService"

// PreparedCall is one method call with its arguments already marshalled, so
// that a fan-out encodes the request once instead of once per model.
type PreparedCall struct {
	method string
	data   []byte // a marshalled mrpb.CallRequest; read-only, shared
}

// PrepareCall marshals a call of method with pre-encoded arguments (see
// variant.Args).
func PrepareCall(method string, args []*mrpb.Argument, kwargs []*mrpb.KwArgument) (*PreparedCall, error) {
	b, err := proto.Marshal(&mrpb.CallRequest{MethodName: method, MethodArguments: args, MethodKwArguments: kwargs})
	if err != nil {
		return nil, fmt.Errorf("encoding call of %s: %w", method, err)
	}
	return &PreparedCall{method: method, data: b}, nil
}

// Prepare encodes positional arguments (see variant.Encode for the accepted
// Go types) and prepares a call of method with them.
func Prepare(method string, args ...any) (*PreparedCall, error) {
	encoded, err := variant.Args(args...)
	if err != nil {
		return nil, err
	}
	return PrepareCall(method, encoded, nil)
}

// Call invokes method on the model with pre-encoded arguments (see
// variant.Args), applying the deadline, the one-call-in-flight rule, the
// cooldown and the failure/timeout bookkeeping. It never returns an error:
// every outcome is a Result, so one bad model cannot fail a fan-out.
func (c *Client) Call(ctx context.Context, method string, args []*mrpb.Argument, kwargs []*mrpb.KwArgument) Result {
	call, err := PrepareCall(method, args, kwargs)
	if err != nil {
		// Our request is wrong, not the model: nothing is counted.
		return Result{Model: c.infoShared(), Status: StatusFailed, Code: CodeInvalidArgument, Err: c.wrap(method, err)}
	}
	return c.CallPrepared(ctx, call)
}

// CallPrepared is Call with a prepared request, which a fan-out shares between
// all its models.
func (c *Client) CallPrepared(ctx context.Context, call *PreparedCall) Result {
	method := call.method
	start := c.opts.Now()
	c.mu.Lock()
	res := Result{Model: c.info}
	if c.state != ClientReady {
		res.Status, res.Err = StatusTimeout, c.wrap(method, fmt.Errorf("%w (%s)", ErrNotReady, c.state))
		c.mu.Unlock()
		return res
	}
	if c.cooldown > 0 {
		c.cooldown--
		c.onTimeoutLocked(false)
		res.Status, res.Err = StatusTimeout, c.wrap(method, ErrCoolingDown)
		c.mu.Unlock()
		return res
	}
	conn, transport := c.conn, c.transport
	c.mu.Unlock()

	if !c.inflight.TryLock() {
		c.mu.Lock()
		c.onTimeoutLocked(false)
		c.mu.Unlock()
		res.Status, res.Err = StatusTimeout, c.wrap(method, ErrBusy)
		return res
	}
	answer, err := c.invoke(ctx, conn, transport, methodCall, call.data, c.opts.CallTimeout)
	res.ExecTime = c.opts.Now().Sub(start)
	var out callOutcome
	if err == nil {
		out = c.decodeAnswer(answer.Message)
	}
	c.inflight.Unlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		st := status.Convert(err)
		res.Code, res.Err = st.Code().String(), c.wrap(method, err)
		switch {
		case ctx.Err() != nil:
			// The caller gave up (shutdown); not the model's fault.
			res.Status, res.Err = StatusTimeout, c.wrap(method, fmt.Errorf("caller gave up: %w", ctx.Err()))
		case isServerAuthError(err):
			// The server answering now is not provably the cruncher's
			// model (a replaced server, a changed key): stop using it.
			res.Status = StatusFailed
			c.retireLocked(FailureConnectionFailed, res.Err.Error())
		case st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "larger than max"):
			// The model answered, but too much: a bad answer, not a slow one.
			res.Status = StatusFailed
			c.onFailureLocked()
		default:
			res.Status = StatusTimeout
			c.onTimeoutLocked(true)
		}
		return res
	}
	if out.decodeErr != nil {
		res.Status, res.Code, res.Err = StatusFailed, codes.Internal.String(), c.wrap(method, fmt.Errorf("decoding the answer: %w", out.decodeErr))
		c.onFailureLocked()
		return res
	}

	res.Code = out.code
	if out.code != CodeSuccess {
		res.Status = StatusFailed
		res.Err = c.wrap(method, &StatusError{Code: out.code, Message: out.message})
		switch out.code {
		case CodeBadImplementation:
			c.retireLocked(FailureBadImplementation, res.Err.Error())
		case CodeInvalidArgument:
			// Our request was wrong, not the model: do not count it.
		case CodeFailedPrecondition:
			// The runner lost its instance (restarted in place?): set it
			// up again rather than blaming the model.
			c.startRepairLocked(c.resetup)
		default:
			c.onFailureLocked()
		}
		return res
	}
	value, err := variant.Decode(&mrpb.Variant{Type: out.typ, Value: out.value})
	if err != nil {
		res.Status, res.Err = StatusFailed, c.wrap(method, err)
		c.onFailureLocked()
		return res
	}
	res.Status, res.Type, res.Value = StatusSuccess, out.typ, value
	c.failures, c.timeouts, c.cooldown = 0, 0, 0
	return res
}

// callOutcome is what CallPrepared reads from a CallResponse.
type callOutcome struct {
	code, message string
	decodeErr     error // the answer is not a CallResponse
	typ           mrpb.VariantType
	value         []byte // the Variant's bytes, in the answer's buffer
}

// decodeAnswer reads a Call's answer with the client's decoder, which the
// caller holds with inflight: one call at a time reuses it. The answer's
// value is decoded later, without the lock.
func (c *Client) decodeAnswer(msg []byte) callOutcome {
	defer c.answers.Release()
	resp, err := c.answers.Decode(msg)
	if err != nil {
		return callOutcome{decodeErr: err}
	}
	return callOutcome{
		code:    resp.GetStatus().GetCode(),
		message: resp.GetStatus().GetMessage(),
		typ:     resp.GetMethodResponse().GetType(),
		value:   resp.GetMethodResponse().GetValue(),
	}
}

func (c *Client) wrap(method string, err error) error {
	return fmt.Errorf("calling %s on model %s: %w", method, c.info.ID, err)
}

func (c *Client) onFailureLocked() {
	c.failures++
	if c.failures > c.opts.MaxConsecutiveFailures {
		c.retireLocked(FailureMultipleFailed, fmt.Sprintf("%d consecutive failures", c.failures))
	}
}

// onTimeoutLocked counts a timeout. A real (sent) timeout starts a cooldown
// of ceil(timeouts/2) skipped calls; skipped and unsent calls count too but do
// not extend it. Every healthThreshold timeouts the model is health-checked
// and, if it does not answer SERVING, reconnected.
func (c *Client) onTimeoutLocked(sent bool) {
	c.timeouts++
	if sent {
		c.cooldown = (c.timeouts + 1) / 2
	}
	if c.timeouts > c.opts.MaxConsecutiveTimeouts {
		c.retireLocked(FailureMultipleTimeout, fmt.Sprintf("%d consecutive timeouts", c.timeouts))
		return
	}
	threshold := max(1, c.opts.MaxConsecutiveTimeouts/5)
	if c.timeouts%threshold == 0 {
		c.startRepairLocked(c.checkHealth)
	}
}

// startRepairLocked runs one health check or re-Setup at a time in the
// background, so a fan-out never waits for it.
func (c *Client) startRepairLocked(repair func()) {
	if c.state != ClientReady || !c.repairs.CompareAndSwap(false, true) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.repairs.Store(false)
		repair()
	}()
}

func (c *Client) checkHealth() {
	c.mu.Lock()
	conn, transport := c.healthConn, c.transport
	c.mu.Unlock()
	resp, err := c.healthCheck(conn, transport)
	if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
		c.logger.DebugContext(c.ctx, "Model runner: model still serving after timeouts")
		return
	}
	reason := fmt.Sprintf("health status %s", resp.GetStatus())
	if err != nil {
		reason = err.Error()
	}
	c.logger.WarnContext(c.ctx, "Model runner: model unhealthy, reconnecting", slog.String("reason", reason))
	c.reconnect()
}

func (c *Client) healthCheck(conn *grpcwire.ClientConn, transport Transport) (*healthpb.HealthCheckResponse, error) {
	req, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		return nil, fmt.Errorf("encoding health check: %w", err)
	}
	answer, err := c.invoke(c.ctx, conn, transport, methodHealth, req, c.opts.HealthTimeout)
	if err != nil {
		return nil, err
	}
	resp := new(healthpb.HealthCheckResponse)
	if err := proto.Unmarshal(answer.Message, resp); err != nil {
		return nil, fmt.Errorf("decoding health check: %w", err)
	}
	return resp, nil
}

// reconnect replaces both connections and runs Setup again.
func (c *Client) reconnect() {
	c.mu.Lock()
	if c.state != ClientReady {
		c.mu.Unlock()
		return
	}
	oldConn, oldHealth := c.conn, c.healthConn
	if err := c.dialLocked(); err != nil {
		c.retireLocked(FailureConnectionFailed, err.Error())
		c.mu.Unlock()
		return
	}
	c.state = ClientPending
	c.reconnects++
	c.mu.Unlock()
	_ = oldConn.Close()
	_ = oldHealth.Close()
	_ = c.Setup(c.ctx)
}

// resetup runs Setup again on the same channels.
func (c *Client) resetup() {
	c.mu.Lock()
	if c.state != ClientReady {
		c.mu.Unlock()
		return
	}
	c.state = ClientPending
	c.reconnects++
	c.mu.Unlock()
	_ = c.Setup(c.ctx)
}

// retireLocked gives up on the run and reports it once. The report goes out
// in the background so the caller (often a fan-out) is not delayed.
func (c *Client) retireLocked(code FailureCode, reason string) {
	if c.state == ClientRetired || c.state == ClientClosed {
		return
	}
	c.state = ClientRetired
	c.reported = code
	report := FailureReport{
		Code:         code,
		DeploymentID: c.info.DeploymentID,
		Host:         c.info.Host,
		ModelID:      c.info.ID,
		Reason:       reason,
	}
	c.logger.WarnContext(c.ctx, "Model runner: giving up on model", slog.String("failure_code", string(code)), slog.String("reason", reason))
	if c.opts.Report == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), reportTimeout)
	go func() {
		defer cancel()
		if err := c.opts.Report(ctx, report); err != nil {
			c.logger.ErrorContext(ctx, "Model runner: reporting failure", slog.String("error", err.Error()))
		}
	}()
}
