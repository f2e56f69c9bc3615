package modelrunner

import (
	"context"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/crunchnode/crunch-node/internal/modelrunner/modelhost"
	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

type clientBundle struct {
	client *Client
	host   *modelhost.Host
	info   ModelInfo
	rep    *reports
}

// setupClient connects a client to a host with the given faults, over
// loopback TCP, and runs Setup unless the faults make it fail.
func setupClient(t *testing.T, example string, faults modelhost.Faults, tweak func(*ClientOptions)) *clientBundle {
	t.Helper()
	info, h := startTCPHost(t, "m1", example, faults)
	rep := &reports{}
	opts := testClientOptions(rep)
	if tweak != nil {
		tweak(&opts)
	}
	c, err := NewClient(info, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &clientBundle{client: c, host: h, info: info, rep: rep}
}

func mustArgs(t *testing.T, values ...any) []*mrpb.Argument {
	t.Helper()
	args, err := variant.Args(values...)
	require.NoError(t, err)
	return args
}

func (b *clientBundle) predict(t *testing.T) Result {
	t.Helper()
	return b.client.Call(t.Context(), "predict", mustArgs(t, "BTCUSDT", 60, 15), nil)
}

func requireStats(t *testing.T, c *Client, state ClientState, failures, timeouts, cooldown int) {
	t.Helper()
	st := c.Stats()
	require.Equal(t, state, st.State, "state")
	require.Equal(t, failures, st.ConsecutiveFailures, "failures")
	require.Equal(t, timeouts, st.ConsecutiveTimeouts, "timeouts")
	require.Equal(t, cooldown, st.Cooldown, "cooldown")
}

func TestClientBufconnSuccess(t *testing.T) {
	t.Parallel()

	dial, _ := startBufHost(t, "mean-reversion", modelhost.Faults{})
	rep := &reports{}
	opts := testClientOptions(rep)
	opts.Dialer = dial
	now := time.Unix(1_700_000_000, 0)
	opts.Now = func() time.Time { now = now.Add(3 * time.Millisecond); return now }
	c, err := NewClient(ModelInfo{ID: "m1", Host: "bufnet", Port: 1, State: StateRunning}, opts)
	require.NoError(t, err)
	defer c.Close()

	res := c.Call(t.Context(), "predict", nil, nil)
	require.Equal(t, StatusTimeout, res.Status)
	require.ErrorIs(t, res.Err, ErrNotReady)

	require.NoError(t, c.Setup(t.Context()))
	require.True(t, c.Ready())

	res = c.Call(t.Context(), "feed_update", mustArgs(t, candles("BTCUSDT", 100, 101, 102, 103, 104, 99)), nil)
	require.Equal(t, StatusSuccess, res.Status, "%v", res.Err)
	require.Equal(t, mrpb.VariantType_NONE, res.Type)
	require.Nil(t, res.Value)
	require.Equal(t, 3*time.Millisecond, res.ExecTime) // injected clock

	res = c.Call(t.Context(), "predict", mustArgs(t, "BTCUSDT", 60, 15), nil)
	require.Equal(t, StatusSuccess, res.Status, "%v", res.Err)
	require.Equal(t, CodeSuccess, res.Code)
	require.Equal(t, mrpb.VariantType_JSON, res.Type)
	// The last close (99) is below the recent mean, so mean reversion bets up, with a
	// signal scaled into (0, 1) (modelhost tests pin the formula).
	reversion := res.Value.(map[string]any)["value"].(float64)
	require.Greater(t, reversion, 0.0)
	require.Less(t, reversion, 1.0)
	requireStats(t, c, ClientReady, 0, 0, 0)
	require.Empty(t, rep.get())
}

// TestClientFaults runs every fault of the model host against the client
// and checks the status and counters the protocol prescribes.
func TestClientFaults(t *testing.T) {
	t.Parallel()

	t.Run("BadImplementation", func(t *testing.T) {
		t.Parallel()
		b := setupClient(t, "momentum", modelhost.Faults{BadImplementation: true}, nil)
		err := b.client.Setup(t.Context())
		var se setupError
		require.ErrorAs(t, err, &se)
		require.Equal(t, CodeBadImplementation, se.Code)
		requireStats(t, b.client, ClientRetired, 0, 0, 0)
		waitFor(t, "report", func() bool { return len(b.rep.get()) == 1 })
		r := b.rep.get()[0]
		require.Equal(t, FailureBadImplementation, r.Code)
		require.Equal(t, "m1", r.ModelID)
		require.Equal(t, b.info.Host, r.Host)
		require.Equal(t, b.info.DeploymentID, r.DeploymentID)
	})

	t.Run("Crash", func(t *testing.T) {
		t.Parallel()
		// MaxConsecutiveTimeouts 5 → a health check after every timeout.
		b := setupClient(t, "momentum", modelhost.Faults{CrashOnCall: 1}, nil)
		require.NoError(t, b.client.Setup(t.Context()))
		res := b.predict(t)
		require.Equal(t, StatusTimeout, res.Status)
		require.Equal(t, "Unavailable", res.Code)
		// The health check fails, the client reconnects, Setup cannot reach
		// the dead host, and the model is reported.
		waitFor(t, "report", func() bool { return len(b.rep.get()) == 1 })
		require.Equal(t, FailureConnectionFailed, b.rep.get()[0].Code)
		st := b.client.Stats()
		require.Equal(t, ClientRetired, st.State)
		require.Equal(t, 1, st.Reconnects)
		require.Equal(t, 1, st.ConsecutiveTimeouts)
	})

	t.Run("Delay", func(t *testing.T) {
		t.Parallel()
		b := setupClient(t, "momentum", modelhost.Faults{Delay: time.Second}, func(o *ClientOptions) {
			o.CallTimeout = 100 * time.Millisecond
			o.MaxConsecutiveTimeouts = 2
		})
		require.NoError(t, b.client.Setup(t.Context()))

		res := b.predict(t)
		require.Equal(t, StatusTimeout, res.Status)
		require.Equal(t, "DeadlineExceeded", res.Code)
		require.GreaterOrEqual(t, res.ExecTime, 100*time.Millisecond)
		requireStats(t, b.client, ClientReady, 0, 1, 1)

		// Cooldown: the next call is skipped, and counts.
		res = b.predict(t)
		require.Equal(t, StatusTimeout, res.Status)
		require.ErrorIs(t, res.Err, ErrCoolingDown)
		requireStats(t, b.client, ClientReady, 0, 2, 0)
		require.Equal(t, 1, b.host.Calls())

		// The next real attempt finds the model still busy with the first
		// call (RESOURCE_EXHAUSTED) or times out; either way a timeout, the
		// third, which exceeds the maximum of 2.
		res = b.predict(t)
		require.Equal(t, StatusTimeout, res.Status)
		waitFor(t, "report", func() bool { return len(b.rep.get()) == 1 })
		require.Equal(t, FailureMultipleTimeout, b.rep.get()[0].Code)
		require.Equal(t, ClientRetired, b.client.Stats().State)
		require.Equal(t, 3, b.client.Stats().ConsecutiveTimeouts)
	})

	t.Run("FailTimes", func(t *testing.T) {
		t.Parallel()
		b := setupClient(t, "momentum", modelhost.Faults{FailTimes: 2}, nil)
		require.NoError(t, b.client.Setup(t.Context()))
		for i := 1; i <= 2; i++ {
			res := b.predict(t)
			require.Equal(t, StatusFailed, res.Status)
			require.Equal(t, CodeModelFailed, res.Code)
			var se *StatusError
			require.ErrorAs(t, res.Err, &se)
			require.Contains(t, se.Message, "injected failure")
			requireStats(t, b.client, ClientReady, i, 0, 0)
		}
		// A success resets the counters.
		res := b.predict(t)
		require.Equal(t, StatusSuccess, res.Status)
		requireStats(t, b.client, ClientReady, 0, 0, 0)
		require.Empty(t, b.rep.get())
	})

	t.Run("FailTimesExceedsMax", func(t *testing.T) {
		t.Parallel()
		b := setupClient(t, "momentum", modelhost.Faults{FailTimes: 10}, nil) // max 3
		require.NoError(t, b.client.Setup(t.Context()))
		for range 4 {
			require.Equal(t, StatusFailed, b.predict(t).Status)
		}
		waitFor(t, "report", func() bool { return len(b.rep.get()) == 1 })
		require.Equal(t, FailureMultipleFailed, b.rep.get()[0].Code)
		require.Equal(t, "4 consecutive failures", b.rep.get()[0].Reason)
		requireStats(t, b.client, ClientRetired, 4, 0, 0)
		// Retired models are not called any more.
		res := b.predict(t)
		require.ErrorIs(t, res.Err, ErrNotReady)
		require.Equal(t, 4, b.host.Calls())
	})

	t.Run("NaN", func(t *testing.T) {
		t.Parallel()
		b := setupClient(t, "momentum", modelhost.Faults{NaN: true}, nil)
		require.NoError(t, b.client.Setup(t.Context()))
		res := b.predict(t)
		// Decoded, so the caller can reject it with a clear reason.
		require.Equal(t, StatusSuccess, res.Status)
		require.True(t, math.IsNaN(res.Value.(map[string]any)["value"].(float64)))
		require.EqualError(t, variant.CheckFinite(res.Value), "non-finite number NaN at $.value")
	})

	t.Run("NotServing", func(t *testing.T) {
		t.Parallel()
		b := setupClient(t, "momentum", modelhost.Faults{NotServing: true, Delay: time.Second}, func(o *ClientOptions) {
			o.CallTimeout = 50 * time.Millisecond
			// The host stays busy with the timed-out call for a second, so
			// the new Setup is refused ("Server busy") until then.
			o.SetupAttempts = 6
			o.SetupBackoff = 100 * time.Millisecond
		})
		require.NoError(t, b.client.Setup(t.Context()))
		res := b.predict(t)
		require.Equal(t, StatusTimeout, res.Status)
		// The health check says NOT_SERVING: new channels and a new Setup,
		// which succeeds, so the model is callable again.
		waitFor(t, "reconnect", func() bool {
			st := b.client.Stats()
			return st.Reconnects == 1 && st.State == ClientReady
		})
		require.Empty(t, b.rep.get())
	})

	t.Run("Oversized", func(t *testing.T) {
		t.Parallel()
		b := setupClient(t, "momentum", modelhost.Faults{OversizedBytes: 5 << 20}, func(o *ClientOptions) {
			o.CallTimeout = 10 * time.Second // 5 MiB under -race takes a while
		})
		require.NoError(t, b.client.Setup(t.Context()))
		res := b.predict(t)
		require.Equal(t, StatusFailed, res.Status, "%v", res.Err)
		require.Equal(t, "ResourceExhausted", res.Code)
		requireStats(t, b.client, ClientReady, 1, 0, 0)
	})
}

func TestClientBusyNotSent(t *testing.T) {
	t.Parallel()

	b := setupClient(t, "momentum", modelhost.Faults{Delay: 500 * time.Millisecond}, func(o *ClientOptions) {
		o.CallTimeout = 5 * time.Second
	})
	require.NoError(t, b.client.Setup(t.Context()))
	first := make(chan Result, 1)
	go func() { first <- b.predict(t) }()
	waitFor(t, "first call to reach the model", func() bool { return b.host.Calls() == 1 })

	res := b.predict(t)
	require.Equal(t, StatusTimeout, res.Status)
	require.ErrorIs(t, res.Err, ErrBusy)
	require.Equal(t, 1, b.host.Calls(), "the second call must not be sent")
	requireStats(t, b.client, ClientReady, 0, 1, 0)

	require.Equal(t, StatusSuccess, (<-first).Status)
	requireStats(t, b.client, ClientReady, 0, 0, 0)
}

func TestClientServerBusy(t *testing.T) {
	t.Parallel()

	// Two clients of one host: the host refuses the second with
	// RESOURCE_EXHAUSTED "Server busy", a timeout for the client.
	b := setupClient(t, "momentum", modelhost.Faults{Delay: 500 * time.Millisecond}, func(o *ClientOptions) {
		o.CallTimeout = 5 * time.Second
	})
	require.NoError(t, b.client.Setup(t.Context()))
	other, err := NewClient(b.info, testClientOptions(&reports{}))
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, other.Setup(t.Context()))

	first := make(chan Result, 1)
	go func() { first <- b.predict(t) }()
	waitFor(t, "first call to reach the model", func() bool { return b.host.Calls() == 1 })
	res := other.Call(t.Context(), "predict", mustArgs(t, "BTC", 60, 15), nil)
	require.Equal(t, StatusTimeout, res.Status)
	require.Equal(t, "ResourceExhausted", res.Code)
	require.ErrorContains(t, res.Err, "Server busy")
	requireStats(t, other, ClientReady, 0, 1, 1)
	require.Equal(t, StatusSuccess, (<-first).Status)
}

func TestClientFailedPreconditionResetup(t *testing.T) {
	t.Parallel()

	b := setupClient(t, "momentum", modelhost.Faults{}, nil)
	require.NoError(t, b.client.Setup(t.Context()))

	// Drop the instance behind the client's back, as a restarted runner would.
	conn, err := grpc.NewClient("passthrough:///"+b.info.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = mrpb.NewDynamicSubclassServiceClient(conn).Rest(t.Context(), &emptypb.Empty{})
	require.NoError(t, err)

	res := b.predict(t)
	require.Equal(t, StatusFailed, res.Status)
	require.Equal(t, CodeFailedPrecondition, res.Code)
	waitFor(t, "re-setup", func() bool {
		st := b.client.Stats()
		return st.Reconnects == 1 && st.State == ClientReady
	})
	requireStats(t, b.client, ClientReady, 0, 0, 0)
	require.Equal(t, StatusSuccess, b.predict(t).Status)
}

func TestClientInvalidArgumentNotCounted(t *testing.T) {
	t.Parallel()

	b := setupClient(t, "momentum", modelhost.Faults{}, nil)
	require.NoError(t, b.client.Setup(t.Context()))
	res := b.client.Call(t.Context(), "", nil, nil)
	require.Equal(t, StatusFailed, res.Status)
	require.Equal(t, CodeInvalidArgument, res.Code)
	requireStats(t, b.client, ClientReady, 0, 0, 0)
}

func TestClientUndecodableAnswer(t *testing.T) {
	t.Parallel()

	// A model answering PARQUET: FAILED with the unsupported error, counted.
	h, err := modelhost.New(modelhost.Config{Factory: func([]any, map[string]any) (modelhost.Model, error) {
		return parquetModel{}, nil
	}})
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = h.Serve(lis) }()
	defer h.Stop(context.Background())

	info := ModelInfo{ID: "pq", Host: "127.0.0.1", Port: lis.Addr().(*net.TCPAddr).Port}
	c, err := NewClient(info, testClientOptions(&reports{}))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Setup(t.Context()))
	res := c.Call(t.Context(), "predict", nil, nil)
	require.Equal(t, StatusFailed, res.Status)
	require.ErrorIs(t, res.Err, variant.ErrUnsupported)
	require.EqualError(t, res.Err, "calling predict on model pq: decoding PARQUET variant: unsupported variant type")
	requireStats(t, c, ClientReady, 1, 0, 0)
}

type parquetModel struct{}

func (parquetModel) Method(string) (modelhost.Method, bool) {
	return modelhost.Method{Func: func(context.Context, []any, map[string]any) (any, error) {
		return &mrpb.Variant{Type: mrpb.VariantType_PARQUET, Value: []byte("PAR1")}, nil
	}}, true
}

func TestClientConnectionFailed(t *testing.T) {
	t.Parallel()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := lis.Addr().(*net.TCPAddr).Port
	require.NoError(t, lis.Close()) // nothing listens there now

	rep := &reports{}
	opts := testClientOptions(rep)
	opts.ConnectTimeout = 200 * time.Millisecond
	c, err := NewClient(ModelInfo{ID: "gone", Host: "127.0.0.1", Port: port, DeploymentID: "gone_1"}, opts)
	require.NoError(t, err)
	defer c.Close()
	err = c.Setup(t.Context())
	require.ErrorContains(t, err, "setting up model gone: connecting to 127.0.0.1:")
	waitFor(t, "report", func() bool { return len(rep.get()) == 1 })
	require.Equal(t, FailureConnectionFailed, rep.get()[0].Code)
	require.Equal(t, ClientRetired, c.Stats().State)
}

func TestClientCallerCancelNotCounted(t *testing.T) {
	t.Parallel()

	b := setupClient(t, "momentum", modelhost.Faults{Delay: time.Second}, func(o *ClientOptions) {
		o.CallTimeout = 5 * time.Second
	})
	require.NoError(t, b.client.Setup(t.Context()))
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		waitFor(t, "call to reach the model", func() bool { return b.host.Calls() == 1 })
		cancel()
	}()
	res := b.client.Call(ctx, "predict", nil, nil)
	require.Equal(t, StatusTimeout, res.Status)
	require.ErrorIs(t, res.Err, context.Canceled)
	requireStats(t, b.client, ClientReady, 0, 0, 0)
}

// protoCodec is grpc-go's own proto codec, what the reference server uses.
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// captureCodec records the raw request bytes a server receives.
type captureCodec struct {
	mu       sync.Mutex
	requests [][]byte
}

func (c *captureCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (c *captureCodec) Unmarshal(data mem.BufferSlice, v any) error {
	c.mu.Lock()
	c.requests = append(c.requests, data.Materialize())
	c.mu.Unlock()
	return protoCodec.Unmarshal(data, v)
}

func (c *captureCodec) Name() string { return "proto" }

// TestClientPreparedCallWire checks that a prepared call puts on the wire what grpc's
// proto codec would: the same message bytes, with content-type application/grpc.
func TestClientPreparedCallWire(t *testing.T) {
	t.Parallel()

	codec := &captureCodec{}
	var contentTypes []string
	var mu sync.Mutex
	info, _ := startTCPHostConfig(t, "m1", modelhost.Config{
		Factory: exampleFactory(t, "constant"),
		ServerOptions: []grpc.ServerOption{
			grpc.ForceServerCodecV2(codec),
			grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
				md, _ := metadata.FromIncomingContext(ctx)
				mu.Lock()
				contentTypes = append(contentTypes, md.Get("content-type")...)
				mu.Unlock()
				return handler(ctx, req)
			}),
		},
	})
	c, err := NewClient(info, testClientOptions(&reports{}))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Setup(t.Context()))

	args := mustArgs(t, "BTCUSDT", 60, 15)
	res := c.Call(t.Context(), "predict", args, nil)
	require.Equal(t, StatusSuccess, res.Status, "%v", res.Err)
	require.Equal(t, map[string]any{"value": 0.5}, res.Value)

	want, err := proto.Marshal(&mrpb.CallRequest{MethodName: "predict", MethodArguments: args})
	require.NoError(t, err)
	codec.mu.Lock()
	defer codec.mu.Unlock()
	require.Len(t, codec.requests, 2) // Setup, then Call
	require.Equal(t, want, codec.requests[1])
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"application/grpc", "application/grpc"}, contentTypes)
}
