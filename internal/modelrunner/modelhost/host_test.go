package modelhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
)

type testBundle struct {
	health healthpb.HealthClient
	host   *Host
	lis    *bufconn.Listener
	stub   mrpb.DynamicSubclassServiceClient
}

func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	if cfg.Factory == nil {
		f, err := ExampleFactory("momentum", ExampleOptions{})
		require.NoError(t, err)
		cfg.Factory = f
	}
	h, err := New(cfg)
	require.NoError(t, err)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = h.Serve(lis) }()
	t.Cleanup(func() { h.Stop(context.Background()) })

	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &testBundle{health: healthpb.NewHealthClient(conn), host: h, lis: lis, stub: mrpb.NewDynamicSubclassServiceClient(conn)}
}

func (b *testBundle) setupModel(t *testing.T) {
	t.Helper()
	resp, err := b.stub.Setup(t.Context(), &mrpb.SetupRequest{ClassName: "cruncher.ModelBaseClass"})
	require.NoError(t, err)
	require.Equal(t, StatusSuccess, resp.GetStatus().GetCode())
}

func (b *testBundle) call(t *testing.T, method string, args ...any) *mrpb.CallResponse {
	t.Helper()
	encoded, err := variant.Args(args...)
	require.NoError(t, err)
	resp, err := b.stub.Call(t.Context(), &mrpb.CallRequest{MethodName: method, MethodArguments: encoded})
	require.NoError(t, err)
	return resp
}

func candles(closes ...float64) map[string]any {
	rows := make([]any, len(closes))
	for i, c := range closes {
		rows[i] = map[string]any{"ts": float64(1000 + 60*i), "open": c, "high": c, "low": c, "close": c, "volume": 1.0}
	}
	return map[string]any{"symbol": "BTCUSDT", "asof_ts": 2000.0, "candles_1m": rows}
}

func TestSetupSemantics(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{BaseClass: "cruncher.ModelBaseClass"})
	ctx := t.Context()

	resp, err := b.stub.Setup(ctx, &mrpb.SetupRequest{})
	require.NoError(t, err)
	require.Equal(t, StatusInvalidArgument, resp.GetStatus().GetCode())

	resp, err = b.stub.Setup(ctx, &mrpb.SetupRequest{ClassName: "other.Base"})
	require.NoError(t, err)
	require.Equal(t, StatusBadImplementation, resp.GetStatus().GetCode())
	require.Equal(t, "no subclass of other.Base found", resp.GetStatus().GetMessage())

	resp, err = b.stub.Setup(ctx, &mrpb.SetupRequest{ClassName: "cruncher.ModelBaseClass"})
	require.NoError(t, err)
	require.Equal(t, StatusSuccess, resp.GetStatus().GetCode())
	require.Equal(t, "Instance created", resp.GetStatus().GetMessage())

	resp, err = b.stub.Setup(ctx, &mrpb.SetupRequest{ClassName: "cruncher.ModelBaseClass"})
	require.NoError(t, err)
	require.Equal(t, StatusSuccess, resp.GetStatus().GetCode())
	require.Equal(t, "Instance already exists", resp.GetStatus().GetMessage())
}

func TestSetupFactoryError(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Factory: func([]any, map[string]any) (Model, error) { return nil, errors.New("boom") }})
	resp, err := b.stub.Setup(t.Context(), &mrpb.SetupRequest{ClassName: "x"})
	require.NoError(t, err)
	require.Equal(t, StatusSetupFailed, resp.GetStatus().GetCode())
	require.Equal(t, "boom", resp.GetStatus().GetMessage())
}

func TestCallSemantics(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	ctx := t.Context()

	require.Equal(t, StatusFailedPrecondition, b.call(t, "predict", "BTCUSDT", 60, 15).GetStatus().GetCode())
	b.setupModel(t)
	require.Equal(t, StatusInvalidArgument, b.call(t, "").GetStatus().GetCode())
	require.Equal(t, StatusBadImplementation, b.call(t, "train").GetStatus().GetCode())
	resp := b.call(t, "predict", 42)
	require.Equal(t, StatusModelFailed, resp.GetStatus().GetCode())
	require.Equal(t, "predict subject must be a string, got int64", resp.GetStatus().GetMessage())

	// feed_update returns None: SUCCESS without a methodResponse.
	resp = b.call(t, "feed_update", candles(100, 101, 102, 103, 104, 110))
	require.Equal(t, StatusSuccess, resp.GetStatus().GetCode())
	require.Nil(t, resp.GetMethodResponse())

	resp = b.call(t, "predict", "BTCUSDT", 60, 15)
	require.Equal(t, StatusSuccess, resp.GetStatus().GetCode())
	require.Equal(t, mrpb.VariantType_JSON, resp.GetMethodResponse().GetType())
	got, err := variant.Decode(resp.GetMethodResponse())
	require.NoError(t, err)
	// (110-100)/100 in units of the window's volatility, squashed into (-1, 1).
	require.InDelta(t, scaled(0.1, []float64{100, 101, 102, 103, 104, 110}), got.(map[string]any)["value"], 1e-12)

	// Rest drops the instance.
	rest, err := b.stub.Rest(ctx, &emptypb.Empty{})
	require.NoError(t, err)
	require.Equal(t, StatusSuccess, rest.GetStatus().GetCode())
	require.Equal(t, StatusFailedPrecondition, b.call(t, "predict", "BTCUSDT", 60, 15).GetStatus().GetCode())
}

type kwModel struct{ seen chan map[string]any }

func (m kwModel) Method(name string) (Method, bool) {
	if name != "predict" {
		return Method{}, false
	}
	return Method{Kwargs: []string{"horizon"}, Func: func(_ context.Context, _ []any, kwargs map[string]any) (any, error) {
		m.seen <- kwargs
		return 1.5, nil
	}}, true
}

func TestKwargsFiltering(t *testing.T) {
	t.Parallel()

	seen := make(chan map[string]any, 1)
	b := setup(t, Config{Factory: func([]any, map[string]any) (Model, error) { return kwModel{seen: seen}, nil }})
	b.setupModel(t)
	kwargs, err := variant.Kwargs(map[string]any{"horizon": 60, "unknown_new_option": "x"})
	require.NoError(t, err)
	resp, err := b.stub.Call(t.Context(), &mrpb.CallRequest{MethodName: "predict", MethodKwArguments: kwargs})
	require.NoError(t, err)
	require.Equal(t, StatusSuccess, resp.GetStatus().GetCode())
	require.Equal(t, map[string]any{"horizon": int64(60)}, <-seen)
	require.Equal(t, mrpb.VariantType_DOUBLE, resp.GetMethodResponse().GetType())
}

func TestBusy(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Faults: Faults{Delay: 2 * time.Second}})
	b.setupModel(t)
	first := make(chan error, 1)
	go func() {
		_, err := b.stub.Call(t.Context(), &mrpb.CallRequest{MethodName: "predict"})
		first <- err
	}()
	require.Eventually(t, func() bool { return b.host.Calls() == 1 }, 5*time.Second, 5*time.Millisecond)
	_, err := b.stub.Call(t.Context(), &mrpb.CallRequest{MethodName: "predict"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.Equal(t, "Server busy", status.Convert(err).Message())
	_, err = b.stub.Setup(t.Context(), &mrpb.SetupRequest{ClassName: "x"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err))
	// Health is still answered while the model is busy.
	h, err := b.health.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	require.NoError(t, <-first)
}

func TestFaults(t *testing.T) {
	t.Parallel()

	t.Run("BadImplementation", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{BadImplementation: true}})
		resp, err := b.stub.Setup(t.Context(), &mrpb.SetupRequest{ClassName: "x"})
		require.NoError(t, err)
		require.Equal(t, StatusBadImplementation, resp.GetStatus().GetCode())
	})
	t.Run("Crash", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{CrashOnCall: 2}})
		b.setupModel(t)
		require.Equal(t, StatusSuccess, b.call(t, "feed_update", candles(1, 2)).GetStatus().GetCode())
		_, err := b.stub.Call(t.Context(), &mrpb.CallRequest{MethodName: "predict"})
		require.Error(t, err)
		select {
		case <-b.host.Crashed():
		case <-time.After(5 * time.Second):
			t.Fatal("host did not crash")
		}
	})
	t.Run("FailTimes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{FailTimes: 2}})
		b.setupModel(t)
		require.Equal(t, StatusModelFailed, b.call(t, "predict", "BTC", 60, 15).GetStatus().GetCode())
		require.Equal(t, StatusModelFailed, b.call(t, "predict", "BTC", 60, 15).GetStatus().GetCode())
		require.Equal(t, StatusSuccess, b.call(t, "predict", "BTC", 60, 15).GetStatus().GetCode())
	})
	t.Run("NaN", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{NaN: true}})
		b.setupModel(t)
		resp := b.call(t, "predict", "BTC", 60, 15)
		require.Equal(t, `{"value": NaN}`, string(resp.GetMethodResponse().GetValue()))
		got, err := variant.Decode(resp.GetMethodResponse())
		require.NoError(t, err)
		require.True(t, math.IsNaN(got.(map[string]any)["value"].(float64)))
	})
	t.Run("NotServing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{NotServing: true}})
		h, err := b.health.Check(t.Context(), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_NOT_SERVING, h.GetStatus())
	})
	t.Run("Oversized", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{OversizedBytes: 1000}})
		b.setupModel(t)
		resp := b.call(t, "predict", "BTC", 60, 15)
		require.Greater(t, len(resp.GetMethodResponse().GetValue()), 1000)
	})
	t.Run("OversizedMegabytes", func(t *testing.T) {
		t.Parallel()
		// Several MB through the client's default flow-control windows.
		const size = 6 << 20
		b := setup(t, Config{Faults: Faults{OversizedBytes: size}})
		b.setupModel(t)
		args, err := variant.Args("BTC", 60, 15)
		require.NoError(t, err)
		req := &mrpb.CallRequest{MethodName: "predict", MethodArguments: args}
		_, err = b.stub.Call(t.Context(), req)
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "over the client's 4 MiB default: %v", err)
		resp, err := b.stub.Call(t.Context(), req, grpc.MaxCallRecvMsgSize(64<<20))
		require.NoError(t, err)
		require.Greater(t, len(resp.GetMethodResponse().GetValue()), size)
	})
}

func TestHealthUnknownService(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	_, err := b.health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "other.Service"})
	require.Equal(t, codes.NotFound, status.Code(err))
	require.Equal(t, "unknown service", status.Convert(err).Message())
}

// TestGracefulStop checks that Stop waits for the running call and answers
// it; a Delay call is cut short by stopping, as the host promises.
func TestGracefulStop(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	started := make(chan struct{})
	model := blockingModel{started: started, release: release}
	b := setup(t, Config{Factory: func([]any, map[string]any) (Model, error) { return model, nil }})
	b.setupModel(t)
	answered := make(chan error, 1)
	go func() {
		resp, err := b.stub.Call(t.Context(), &mrpb.CallRequest{MethodName: "predict"})
		if err == nil && resp.GetStatus().GetCode() != StatusSuccess {
			err = fmt.Errorf("status %v", resp.GetStatus())
		}
		answered <- err
	}()
	<-started
	stopped := make(chan struct{})
	go func() {
		b.host.Stop(t.Context())
		close(stopped)
	}()
	// Once the listener is closed, Stop is under way...
	require.Eventually(t, func() bool {
		c, err := b.lis.DialContext(t.Context())
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 5*time.Second, time.Millisecond)
	// ...and must wait for the call.
	select {
	case <-stopped:
		t.Fatal("Stop returned while a call was running")
	case err := <-answered:
		t.Fatalf("the call ended before it was released: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-answered)
	<-stopped
}

type blockingModel struct{ started, release chan struct{} }

func (m blockingModel) Method(string) (Method, bool) {
	return Method{Func: func(context.Context, []any, map[string]any) (any, error) {
		close(m.started)
		<-m.release
		return 1.0, nil
	}}, true
}

func TestExamples(t *testing.T) {
	t.Parallel()

	closes := []float64{100, 102, 101, 103, 104, 106, 105}
	// last 5: 101 103 104 106 105, mean 103.8; five back from 105 is 102.
	tests := []struct {
		name string
		want float64
	}{
		{name: "constant", want: 0.25},
		{name: "contrarian", want: scaled(-(105.0-102)/102, closes)},
		{name: "mean-reversion", want: scaled(-(105-103.8)/103.8, closes)},
		{name: "momentum", want: scaled((105.0-102)/102, closes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := ExampleFactory(tt.name, ExampleOptions{ConstantValue: 0.25})
			require.NoError(t, err)
			b := setup(t, Config{Factory: f})
			b.setupModel(t)
			// Overlapping windows, as successive feed ticks send them.
			require.Equal(t, StatusSuccess, b.call(t, "feed_update", candles(closes[:5]...)).GetStatus().GetCode())
			require.Equal(t, StatusSuccess, b.call(t, "tick", candles(closes...)).GetStatus().GetCode())
			// Subject "BTC" finds the feed symbol "BTCUSDT".
			got, err := variant.Decode(b.call(t, "predict", "BTC", 60, 15).GetMethodResponse())
			require.NoError(t, err)
			require.InDelta(t, tt.want, got.(map[string]any)["value"], 1e-12)
		})
	}
}

func TestExampleTicksAndEmpty(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	b.setupModel(t)
	got, err := variant.Decode(b.call(t, "predict", "ETH", 60, 15).GetMethodResponse())
	require.NoError(t, err)
	require.Equal(t, map[string]any{"value": 0.0}, got)

	ticks := map[string]any{"symbol": "ETH", "ticks": []any{
		map[string]any{"ts": 1.0, "price": 10.0}, map[string]any{"ts": 2.0, "price": 11.0},
	}}
	require.Equal(t, StatusSuccess, b.call(t, "feed_update", ticks).GetStatus().GetCode())
	got, err = variant.Decode(b.call(t, "predict", "ETH", 60, 15).GetMethodResponse())
	require.NoError(t, err)
	require.Equal(t, 0.0, got.(map[string]any)["value"], "two prices are too few to estimate volatility")
}

func TestScaled(t *testing.T) {
	t.Parallel()
	closes := []float64{100, 101, 100, 101, 100, 101}
	require.Zero(t, scaled(0.01, closes[:2]))
	require.Zero(t, scaled(0.01, []float64{100, 100, 100}), "no volatility, no signal")
	up := scaled(0.01, closes)
	require.Greater(t, up, 0.0)
	require.Less(t, up, 1.0)
	require.InDelta(t, -up, scaled(-0.01, closes), 1e-12)
}

func TestExampleFactoryUnknown(t *testing.T) {
	t.Parallel()

	_, err := ExampleFactory("oracle", ExampleOptions{})
	require.EqualError(t, err, `unknown example model "oracle" (known: constant, contrarian, mean-reversion, momentum)`)
}

func TestRun(t *testing.T) {
	t.Parallel()

	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--model", "constant", "--port", "0", "--constant-value", "7"}, pw)
		_ = pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	require.True(t, lines.Scan())
	addr, ok := strings.CutPrefix(lines.Text(), "model-server listening on ")
	require.True(t, ok, lines.Text())
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	stub := mrpb.NewDynamicSubclassServiceClient(conn)
	_, err = stub.Setup(ctx, &mrpb.SetupRequest{ClassName: "x"})
	require.NoError(t, err)
	args, err := variant.Args("BTC", 60, 15)
	require.NoError(t, err)
	resp, err := stub.Call(ctx, &mrpb.CallRequest{MethodName: "predict", MethodArguments: args})
	require.NoError(t, err)
	got, err := variant.Decode(resp.GetMethodResponse())
	require.NoError(t, err)
	require.Equal(t, map[string]any{"value": 7.0}, got)

	cancel()
	require.NoError(t, <-done)
}

func TestRunFlagErrors(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--model", "nope", "--port", "0"}, wantErr: `model-server: unknown example model "nope"`},
		{args: []string{"--port", "0"}, wantErr: "model-server: --model is required"},
		{args: []string{"--model", "constant", "extra"}, wantErr: `model-server: unexpected arguments ["extra"]`},
		{args: []string{"--bogus"}, wantErr: "parsing model-server flags"},
	} {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			t.Parallel()
			err := Run(t.Context(), tt.args, io.Discard)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
