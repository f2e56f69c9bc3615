package modelhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/crunchnode/crunch-node/internal/grpcwire"
	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

// Application status codes, as strings on the wire (commons.Status.code).
const (
	StatusBadImplementation  = "BAD_IMPLEMENTATION"
	StatusFailedPrecondition = "FAILED_PRECONDITION"
	StatusInvalidArgument    = "INVALID_ARGUMENT"
	StatusModelFailed        = "MODEL_FAILED"
	StatusSetupFailed        = "SETUP_FAILED"
	StatusSuccess            = "SUCCESS"
)

// ErrCrashed is returned by Serve (and Run) when the crash fault fired, so a
// model-server process exits non-zero the way a crashing model would.
var ErrCrashed = errors.New("model host crashed (injected fault)")

// Method is one callable method of a hosted model.
type Method struct {
	// Func runs the method with positional arguments in position order and
	// the keyword arguments the method accepts. Returning an error answers
	// MODEL_FAILED with the error text, as a raised exception does upstream.
	// The result is encoded with variant.Encode, except a *mrpb.Variant,
	// which is sent as is.
	Func func(ctx context.Context, args []any, kwargs map[string]any) (any, error)

	// Args, when set, decodes the positional arguments for Func instead of
	// variant.DecodeArgs: a method that reads a large JSON input can decode it
	// into a struct, which costs a fraction of decoding it into maps. The
	// arguments, Variants and their bytes are only valid during the call
	// (they are reused): what Args returns must not point into them.
	Args func(args []*mrpb.Argument) ([]any, error)

	// Kwargs lists the keyword arguments Func accepts. Others are dropped
	// (and logged once), mirroring the Python runner's signature filtering, so
	// a coordinator can add optional keywords without breaking old models.
	Kwargs []string
}

// Model is one instance of a participant's model.
type Model interface {
	// Method looks a method up by name; false answers BAD_IMPLEMENTATION.
	Method(name string) (Method, bool)
}

// Factory creates the model instance on Setup from the decoded constructor
// arguments. An error answers SETUP_FAILED.
type Factory func(args []any, kwargs map[string]any) (Model, error)

// Faults injects misbehaviour so the client's failure handling can be
// exercised against a real server. The zero value injects nothing.
type Faults struct {
	// BadImplementation makes Setup answer BAD_IMPLEMENTATION, as when the
	// submission has no subclass of the base class.
	BadImplementation bool

	// CrashOnCall stops the host abruptly (connections dropped, Serve returns
	// ErrCrashed) when the Nth Call arrives, counting from 1. 0 never crashes.
	CrashOnCall int

	// Delay holds every Call this long before answering. The host keeps the
	// call lock meanwhile, like a slow Python model that ignores cancellation.
	Delay time.Duration

	// FailTimes makes the first N Calls answer MODEL_FAILED.
	FailTimes int

	// NaN makes predict answer the Python-style JSON {"value": NaN}.
	NaN bool

	// NotServing makes the health service answer NOT_SERVING.
	NotServing bool

	// OversizedBytes, when positive, makes predict answer a JSON document of
	// at least this many bytes (to exceed the client's message limit).
	OversizedBytes int
}

// Config configures a Host.
type Config struct {
	// BaseClass, when set, is the only Setup className accepted; any other
	// answers BAD_IMPLEMENTATION ("no subclass found"). Empty accepts any
	// non-empty class name.
	BaseClass string

	// Factory creates the model on Setup. Required.
	Factory Factory

	// Faults to inject; zero for a well-behaved host.
	Faults Faults

	// Logger receives the host's logs; nil discards them.
	Logger *slog.Logger

	// ServerOptions, when non-empty, make the host serve with grpc-go
	// instead of the lean grpcwire server, with these options appended to
	// the host's own: TLS credentials or interceptors in tests. grpc-go is
	// the reference implementation the lean server is checked against; the
	// lean one exists because it costs a fraction of grpc-go's CPU per call,
	// which matters when a hundred hosts share a machine.
	ServerOptions []grpc.ServerOption
}

// Host serves one model over gRPC. Create it with New and start it with Serve.
type Host struct {
	mrpb.UnimplementedDynamicSubclassServiceServer

	calls     atomic.Int64
	cfg       Config
	crashOnce sync.Once
	crashed   chan struct{}
	instance  Model
	logger    *slog.Logger
	// mu is the single non-blocking call lock: Setup, Call and Rest never run
	// concurrently; a second one is refused with RESOURCE_EXHAUSTED at once.
	mu         sync.Mutex
	stopping   chan struct{}
	stopOnce   sync.Once
	warnedKwMu sync.Mutex
	warnedKw   map[string]bool

	// Exactly one of wire (the default) and grpcServer (with its health
	// service) is set; see Config.ServerOptions.
	wire       *grpcwire.Server
	grpcServer *grpc.Server
	health     *health.Server
}

// Python's default receive limit is 4 MiB; the host accepts a little more so
// that oversized-output tests fail on the client side, where the limit is
// enforced, rather than here.
const maxRecvMsgSize = 16 << 20

// New builds a Host. It does not listen yet.
func New(cfg Config) (*Host, error) {
	if cfg.Factory == nil {
		return nil, errors.New("modelhost: Config.Factory is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Host{
		cfg:      cfg,
		crashed:  make(chan struct{}),
		logger:   logger,
		stopping: make(chan struct{}),
		warnedKw: map[string]bool{},
	}
	if len(cfg.ServerOptions) > 0 {
		h.newGRPCServer()
		return h, nil
	}
	h.wire = grpcwire.NewServer(grpcwire.ServerOptions{MaxRecvMsgSize: maxRecvMsgSize, Logger: logger})
	h.wire.Handle(mrpb.DynamicSubclassService_Setup_FullMethodName, wireHandler(h.Setup))
	h.wire.Handle(mrpb.DynamicSubclassService_Call_FullMethodName, h.wireCall)
	h.wire.Handle(mrpb.DynamicSubclassService_Rest_FullMethodName, wireHandler(h.Rest))
	h.wire.Handle(healthpb.Health_Check_FullMethodName, h.healthCheck)
	return h, nil
}

// newGRPCServer sets the host up on grpc-go, the reference implementation.
func (h *Host) newGRPCServer() {
	opts := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxSendMsgSize(64 << 20),
		// Fixed windows turn off BDP estimation pings: fewer writes per call.
		grpc.InitialWindowSize(8 << 20),
		grpc.InitialConnWindowSize(8 << 20),
		// Reuse stream goroutines instead of starting (and growing the
		// stack of) one per call.
		grpc.NumStreamWorkers(2),
	}, h.cfg.ServerOptions...)
	h.grpcServer = grpc.NewServer(opts...)
	h.health = health.NewServer()
	mrpb.RegisterDynamicSubclassServiceServer(h.grpcServer, h)
	healthpb.RegisterHealthServer(h.grpcServer, h.health)
	servingStatus := healthpb.HealthCheckResponse_SERVING
	if h.cfg.Faults.NotServing {
		servingStatus = healthpb.HealthCheckResponse_NOT_SERVING
	}
	h.health.SetServingStatus("", servingStatus)
}

// wireHandler adapts a Host method to grpcwire: decode the request, call,
// encode the answer, as grpc-go's generated handlers do.
func wireHandler[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](method func(context.Context, PReq) (Resp, error)) grpcwire.Handler {
	return func(ctx context.Context, in []byte) ([]byte, error) {
		req := PReq(new(Req))
		if err := proto.Unmarshal(in, req); err != nil {
			return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
		}
		resp, err := method(ctx, req)
		if err != nil {
			return nil, err
		}
		return proto.Marshal(resp)
	}
}

// Health answers, encoded once.
var (
	healthServing    = mustMarshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
	healthNotServing = mustMarshal(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
)

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// healthCheck is grpc.health.v1.Health/Check for the lean server, with the
// answers of grpc's health server: only the overall service ("") is known,
// NOT_SERVING under the fault and once the host has crashed.
func (h *Host) healthCheck(_ context.Context, in []byte) ([]byte, error) {
	var req healthpb.HealthCheckRequest
	if err := proto.Unmarshal(in, &req); err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
	}
	if req.GetService() != "" {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	select {
	case <-h.crashed:
		return healthNotServing, nil
	default:
	}
	if h.cfg.Faults.NotServing {
		return healthNotServing, nil
	}
	return healthServing, nil
}

// Serve accepts connections on lis until Stop, or until the crash fault
// fires, in which case it returns ErrCrashed.
func (h *Host) Serve(lis net.Listener) error {
	var err error
	if h.wire != nil {
		err = h.wire.Serve(lis)
	} else {
		err = h.grpcServer.Serve(lis)
	}
	select {
	case <-h.crashed:
		return ErrCrashed
	default:
	}
	if errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, grpcwire.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop shuts the host down. Graceful waits for the running call (bounded by
// ctx); otherwise connections are cut at once.
func (h *Host) Stop(ctx context.Context) {
	h.stopOnce.Do(func() { close(h.stopping) })
	if h.wire != nil {
		h.wire.GracefulStop(ctx)
		return
	}
	done := make(chan struct{})
	go func() {
		h.grpcServer.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		h.grpcServer.Stop()
		<-done
	}
}

// Calls counts Call requests that got past the call lock (busy refusals are
// not counted),
// so tests can tell when a call has reached the model.
func (h *Host) Calls() int { return int(h.calls.Load()) }

// Crashed is closed when the crash fault has fired.
func (h *Host) Crashed() <-chan struct{} { return h.crashed }

func appStatus(code, message string) *mrpb.Status {
	return &mrpb.Status{Code: code, Message: message}
}

// statusSuccess is shared by every successful answer; messages are only read
// once built.
var statusSuccess = appStatus(StatusSuccess, "")

var errBusy = status.Error(codes.ResourceExhausted, "Server busy")

// Setup creates the model instance. It is idempotent: a second Setup keeps the
// existing instance, as upstream does.
func (h *Host) Setup(ctx context.Context, req *mrpb.SetupRequest) (*mrpb.SetupResponse, error) {
	if !h.mu.TryLock() {
		return nil, errBusy
	}
	defer h.mu.Unlock()

	className := req.GetClassName()
	switch {
	case className == "":
		return &mrpb.SetupResponse{Status: appStatus(StatusInvalidArgument, "className is required")}, nil
	case h.instance != nil:
		return &mrpb.SetupResponse{Status: appStatus(StatusSuccess, "Instance already exists")}, nil
	case h.cfg.Faults.BadImplementation || (h.cfg.BaseClass != "" && className != h.cfg.BaseClass):
		return &mrpb.SetupResponse{Status: appStatus(StatusBadImplementation, fmt.Sprintf("no subclass of %s found", className))}, nil
	}
	args, err := variant.DecodeArgs(req.GetInstanceArguments())
	if err != nil {
		return &mrpb.SetupResponse{Status: appStatus(StatusInvalidArgument, err.Error())}, nil
	}
	kwargs, err := variant.DecodeKwargs(req.GetInstanceKwArguments())
	if err != nil {
		return &mrpb.SetupResponse{Status: appStatus(StatusInvalidArgument, err.Error())}, nil
	}
	model, err := h.cfg.Factory(args, kwargs)
	if err != nil {
		return &mrpb.SetupResponse{Status: appStatus(StatusSetupFailed, err.Error())}, nil
	}
	h.instance = model
	h.logger.InfoContext(ctx, "Model host: instance created", slog.String("class_name", className))
	return &mrpb.SetupResponse{Status: appStatus(StatusSuccess, "Instance created")}, nil
}

// Call runs one method of the instance.
func (h *Host) Call(ctx context.Context, req *mrpb.CallRequest) (*mrpb.CallResponse, error) {
	st, result, err := h.call(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := &mrpb.CallResponse{Status: st}
	if v, ok := result.(*mrpb.Variant); ok {
		// Sent as is: lets a model (or a test) control the wire encoding.
		resp.MethodResponse = v
		return resp, nil
	}
	if result != nil {
		v, err := variant.Encode(result)
		if err != nil {
			return &mrpb.CallResponse{Status: appStatus(StatusModelFailed, err.Error())}, nil
		}
		resp.MethodResponse = v
	}
	return resp, nil
}

// wireCall is Call for the lean server, without the protobuf runtime: the
// request is decoded into reused messages and the answer encoded straight
// from the method's result, which saves a dozen allocations per call.
func (h *Host) wireCall(ctx context.Context, in []byte) ([]byte, error) {
	wc := wireCallPool.Get().(*wireCallState)
	defer wc.release()
	req, err := wc.req.Decode(in)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
	}
	st, result, err := h.call(ctx, req)
	if err != nil {
		return nil, err
	}
	v, ok := result.(*mrpb.Variant)
	if !ok && result != nil {
		if err := variant.EncodeInto(&wc.resp, result); err != nil {
			return mrpb.MarshalCallResponse(appStatus(StatusModelFailed, err.Error()), nil)
		}
		v = &wc.resp
	}
	return mrpb.MarshalCallResponse(st, v)
}

// wireCallState is what wireCall reuses from call to call. The decoded
// request points into the request buffer and is only used during the call.
type wireCallState struct {
	req  mrpb.CallRequestDecoder
	resp mrpb.Variant
}

var wireCallPool = sync.Pool{New: func() any { return new(wireCallState) }}

func (wc *wireCallState) release() {
	wc.req.Release()
	wc.resp = mrpb.Variant{}
	wireCallPool.Put(wc)
}

// call runs one method of the instance: it answers the application status
// and, on success, the method's result (nil for none).
func (h *Host) call(ctx context.Context, req *mrpb.CallRequest) (*mrpb.Status, any, error) {
	if !h.mu.TryLock() {
		return nil, nil, errBusy
	}
	defer h.mu.Unlock()

	n := int(h.calls.Add(1))
	faults := h.cfg.Faults
	if faults.CrashOnCall > 0 && n >= faults.CrashOnCall {
		h.crash()
		// Never answer: like a dying process, the connection just drops.
		<-ctx.Done()
		return nil, nil, status.Error(codes.Unavailable, "model host crashed")
	}
	if faults.Delay > 0 {
		select {
		case <-time.After(faults.Delay):
		case <-h.stopping:
			return nil, nil, status.Error(codes.Unavailable, "model host stopping")
		}
	}

	if h.instance == nil {
		return appStatus(StatusFailedPrecondition, "Setup has not been called"), nil, nil
	}
	name := req.GetMethodName()
	if name == "" {
		return appStatus(StatusInvalidArgument, "methodName is required"), nil, nil
	}
	method, ok := h.instance.Method(name)
	if !ok {
		return appStatus(StatusBadImplementation, fmt.Sprintf("model has no method %q", name)), nil, nil
	}
	if n <= faults.FailTimes {
		return appStatus(StatusModelFailed, fmt.Sprintf("injected failure %d of %d", n, faults.FailTimes)), nil, nil
	}
	decodeArgs := variant.DecodeArgs
	if method.Args != nil {
		decodeArgs = method.Args
	}
	args, err := decodeArgs(req.GetMethodArguments())
	if err != nil {
		return appStatus(StatusInvalidArgument, err.Error()), nil, nil
	}
	kwargs, err := variant.DecodeKwargs(req.GetMethodKwArguments())
	if err != nil {
		return appStatus(StatusInvalidArgument, err.Error()), nil, nil
	}
	kwargs = h.filterKwargs(ctx, name, method.Kwargs, kwargs)

	switch {
	case name == "predict" && faults.NaN:
		return statusSuccess, rawJSON(`{"value": NaN}`), nil
	case name == "predict" && faults.OversizedBytes > 0:
		return statusSuccess, oversized(faults.OversizedBytes), nil
	}
	result, err := method.Func(ctx, args, kwargs)
	if err != nil {
		return appStatus(StatusModelFailed, err.Error()), nil, nil
	}
	return statusSuccess, result, nil
}

// Rest drops the instance; the next Call needs a new Setup.
func (h *Host) Rest(ctx context.Context, _ *emptypb.Empty) (*mrpb.RestResponse, error) {
	if !h.mu.TryLock() {
		return nil, errBusy
	}
	defer h.mu.Unlock()
	h.instance = nil
	return &mrpb.RestResponse{Status: appStatus(StatusSuccess, "Instance removed")}, nil
}

// filterKwargs drops keyword arguments the method does not accept, logging
// each dropped keyword once per method.
func (h *Host) filterKwargs(ctx context.Context, method string, accepted []string, kwargs map[string]any) map[string]any {
	if len(kwargs) == 0 {
		return kwargs
	}
	kept := make(map[string]any, len(kwargs))
	for k, v := range kwargs {
		if slices.Contains(accepted, k) {
			kept[k] = v
			continue
		}
		key := method + "\x00" + k
		h.warnedKwMu.Lock()
		first := !h.warnedKw[key]
		h.warnedKw[key] = true
		h.warnedKwMu.Unlock()
		if first {
			h.logger.WarnContext(ctx, "Model host: dropping unsupported keyword argument", slog.String("method", method), slog.String("keyword", k))
		}
	}
	return kept
}

// crash cuts every connection without answering, like a process dying
// mid-call.
func (h *Host) crash() {
	h.crashOnce.Do(func() {
		close(h.crashed)
		h.stopOnce.Do(func() { close(h.stopping) })
		// A dead process answers no health checks either; flip the status
		// (closing crashed does it for the lean server) before the
		// connections are cut so no check slips in between.
		if h.wire != nil {
			go h.wire.Stop()
			return
		}
		h.health.Shutdown()
		go h.grpcServer.Stop()
	})
}
