package pyhost_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/crunchnode/crunch-node/internal/modelrunner"
	"github.com/crunchnode/crunch-node/internal/modelrunner/mrpb"
	"github.com/crunchnode/crunch-node/internal/modelrunner/variant"
	"github.com/crunchnode/crunch-node/internal/pyhost"
)

// requirePython returns an interpreter that runs the host. Without one the test fails on
// CI (CI=true), where `make deps` installs it, and is skipped elsewhere with the reason.
func requirePython(t *testing.T) string {
	t.Helper()
	python, err := pyhost.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the python model host tests need python3 with grpc (CI=true): %v", err)
		}
		t.Skipf("skipping: %v (with CI=true this is a failure)", err)
	}
	return python
}

// cruncherPy is a minimal challenge base class, as a submission carries it.
const cruncherPy = `
class ModelBaseClass:
    def tick(self, data):
        self.feed_update(data)

    def feed_update(self, data):
        pass

    def predict(self, subject, resolve_horizon_seconds, step_seconds):
        raise NotImplementedError
`

// trackerPy exercises every path of the host.
const trackerPy = `
import os
import time

from cruncher import ModelBaseClass


class Helper:
    """Not a model: must be skipped."""


class Tracker(ModelBaseClass):
    def __init__(self, scale=1.0, offset=0.0):
        self.scale = scale
        self.offset = offset
        self.last = {}

    def feed_update(self, data):
        self.last[data["symbol"]] = data["candles_1m"][-1]["close"]

    def predict(self, subject, resolve_horizon_seconds, step_seconds, *, bias=0.0):
        return {"value": self.last.get(subject, 0.0) * self.scale + self.offset + bias,
                "horizon": resolve_horizon_seconds, "step": step_seconds}

    def echo(self, value):
        return value

    def truth(self):
        return True

    def nothing(self):
        return None

    def a_tuple(self):
        return (1, 2)

    def huge(self):
        return 2 ** 70

    def boom(self):
        raise ValueError("model exploded")

    def slow(self, started, release):
        open(started, "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.005)
        return "done"
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	return dir
}

// syncBuffer collects a child's output for failure messages.
type syncBuffer struct {
	buf bytes.Buffer
	mu  sync.Mutex
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startHost runs the embedded host for codeDir through the runtime on a port it picks
// itself (--port 0, read back from its first line, so there is no port race), waits until
// it answers health checks and returns where it listens.
func startHost(t *testing.T, python, codeDir string, args ...string) modelrunner.ModelInfo {
	t.Helper()
	return startHostProcess(t, python, codeDir, args...).info
}

// hostProcess is a running host.
type hostProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
	info   modelrunner.ModelInfo
}

func startHostProcess(t *testing.T, python, codeDir string, args ...string) hostProcess {
	t.Helper()
	run := pyhost.NewRuntime(pyhost.Options{CacheDir: t.TempDir(), Python: python})
	cmd, err := run(modelrunner.LocalModel{Args: args, CodeDir: codeDir, ID: "1"}, 0)
	require.NoError(t, err)
	output := &syncBuffer{}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = output
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	addrs := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			line := scanner.Text()
			if a, ok := strings.CutPrefix(line, "model host listening on "); ok {
				addrs <- a
			}
			_, _ = output.Write([]byte(line + "\n"))
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("model host output:\n%s", output.String())
		}
	})

	var addr string
	select {
	case addr = <-addrs:
	case <-exited:
		t.Fatalf("model host exited before listening:\n%s", output.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("model host did not start listening:\n%s", output.String())
	}
	host, portText, ok := strings.Cut(addr, ":")
	require.True(t, ok, addr)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)

	health := healthpb.NewHealthClient(dial(t, addr))
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}, 20*time.Second, 20*time.Millisecond, "model host never answered SERVING")

	info := modelrunner.ModelInfo{DeploymentID: "1_test", Host: host, ID: "1", Name: "tracker", Port: port, State: modelrunner.StateRunning}
	return hostProcess{cmd: cmd, exited: exited, info: info}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func stub(t *testing.T, info modelrunner.ModelInfo) mrpb.DynamicSubclassServiceClient {
	t.Helper()
	return mrpb.NewDynamicSubclassServiceClient(dial(t, info.Addr()))
}

func setup(t *testing.T, s mrpb.DynamicSubclassServiceClient, className string) *mrpb.Status {
	t.Helper()
	resp, err := s.Setup(t.Context(), &mrpb.SetupRequest{ClassName: className})
	require.NoError(t, err)
	return resp.GetStatus()
}

func call(t *testing.T, s mrpb.DynamicSubclassServiceClient, method string, args ...*mrpb.Variant) *mrpb.CallResponse {
	t.Helper()
	req := &mrpb.CallRequest{MethodName: method}
	for i, a := range args {
		req.MethodArguments = append(req.MethodArguments, &mrpb.Argument{Position: uint32(i + 1), Data: a})
	}
	resp, err := s.Call(t.Context(), req)
	require.NoError(t, err)
	return resp
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func clientOptions() modelrunner.ClientOptions {
	return modelrunner.ClientOptions{
		CallTimeout:    20 * time.Second,
		ConnectTimeout: 10 * time.Second,
		SetupAttempts:  1,
		SetupTimeout:   20 * time.Second,
	}
}

func candles(symbol string, closes ...float64) map[string]any {
	rows := make([]any, len(closes))
	for i, c := range closes {
		rows[i] = map[string]any{"ts": 1_700_000_000 + 60*i, "open": c, "high": c, "low": c, "close": c, "volume": 1.0}
	}
	return map[string]any{"symbol": symbol, "asof_ts": 1_700_000_000 + 60*len(closes), "candles_1m": rows}
}

// TestClientDrivesPythonModel is the coordinator's view: the modelrunner client sets the
// model up, feeds it and asks for predictions, as the predict role does.
func TestClientDrivesPythonModel(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	info := startHost(t, python, writeFiles(t, map[string]string{"cruncher.py": cruncherPy, "main.py": trackerPy}))

	client, err := modelrunner.NewClient(info, clientOptions())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Setup(t.Context()))

	feed, err := variant.Args(candles("BTCUSDT", 100, 101, 102.5))
	require.NoError(t, err)
	res := client.Call(t.Context(), "feed_update", feed, nil)
	require.Equal(t, modelrunner.StatusSuccess, res.Status, res.Err)
	require.Nil(t, res.Value)
	require.Equal(t, mrpb.VariantType_NONE, res.Type)

	args, err := variant.Args("BTCUSDT", 60, 15)
	require.NoError(t, err)
	res = client.Call(t.Context(), "predict", args, nil)
	require.Equal(t, modelrunner.StatusSuccess, res.Status, res.Err)
	require.Equal(t, mrpb.VariantType_JSON, res.Type)
	require.Equal(t, map[string]any{"value": 102.5, "horizon": 60.0, "step": 15.0}, res.Value)

	// A keyword the method accepts is passed; one it does not is dropped, not an error.
	kwargs, err := variant.Kwargs(map[string]any{"bias": 0.5, "not_a_parameter": "x"})
	require.NoError(t, err)
	res = client.Call(t.Context(), "predict", args, kwargs)
	require.Equal(t, modelrunner.StatusSuccess, res.Status, res.Err)
	require.InDelta(t, 103.0, res.Value.(map[string]any)["value"], 1e-12)

	res = client.Call(t.Context(), "boom", nil, nil)
	require.Equal(t, modelrunner.StatusFailed, res.Status)
	require.Equal(t, modelrunner.CodeModelFailed, res.Code)
	require.ErrorContains(t, res.Err, "ValueError: model exploded")
	require.Equal(t, 1, client.Stats().ConsecutiveFailures)

	res = client.Call(t.Context(), "predict", args, nil)
	require.Equal(t, modelrunner.StatusSuccess, res.Status, res.Err)
	require.Zero(t, client.Stats().ConsecutiveFailures)
}

// TestVariantWireEncoding pins the bytes: the protocol's fixed layouts both ways.
func TestVariantWireEncoding(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	s := stub(t, startHost(t, python, writeFiles(t, map[string]string{"cruncher.py": cruncherPy, "main.py": trackerPy})))
	require.Equal(t, "SUCCESS", setup(t, s, "cruncher.ModelBaseClass").GetCode())

	for name, v := range map[string]*mrpb.Variant{
		"double":      {Type: mrpb.VariantType_DOUBLE, Value: mustHex(t, "00 00 00 00 00 00 e0 3f")},
		"int":         {Type: mrpb.VariantType_INT, Value: mustHex(t, "3c 00 00 00 00 00 00 00")},
		"negative":    {Type: mrpb.VariantType_INT, Value: mustHex(t, "fe ff ff ff ff ff ff ff")},
		"string":      {Type: mrpb.VariantType_STRING, Value: []byte("héllo ✓")},
		"json_nan":    {Type: mrpb.VariantType_JSON, Value: []byte(`{"a": NaN, "b": [1, 2.5, "x", -Infinity], "c": null}`)},
		"json_list":   {Type: mrpb.VariantType_JSON, Value: []byte(`[true, false]`)},
		"json_string": {Type: mrpb.VariantType_JSON, Value: []byte(`"s"`)}, // decodes to a str, comes back as STRING
	} {
		resp := call(t, s, "echo", v)
		require.Equal(t, "SUCCESS", resp.GetStatus().GetCode(), "%s: %s", name, resp.GetStatus().GetMessage())
		if name == "json_string" {
			require.Equal(t, mrpb.VariantType_STRING, resp.GetMethodResponse().GetType())
			require.Equal(t, []byte("s"), resp.GetMethodResponse().GetValue())
			continue
		}
		require.Equal(t, v.GetType(), resp.GetMethodResponse().GetType(), name)
		require.Equal(t, v.GetValue(), resp.GetMethodResponse().GetValue(), name)
	}

	// The Go decoder reads the Python NaN back.
	resp := call(t, s, "echo", &mrpb.Variant{Type: mrpb.VariantType_JSON, Value: []byte(`{"value": NaN}`)})
	decoded, err := variant.Decode(resp.GetMethodResponse())
	require.NoError(t, err)
	require.True(t, math.IsNaN(decoded.(map[string]any)["value"].(float64)))

	// None travels as no methodResponse at all; True as INT 1.
	resp = call(t, s, "nothing")
	require.Equal(t, "SUCCESS", resp.GetStatus().GetCode())
	require.Nil(t, resp.GetMethodResponse())
	resp = call(t, s, "echo", &mrpb.Variant{Type: mrpb.VariantType_NONE})
	require.Nil(t, resp.GetMethodResponse())
	resp = call(t, s, "truth")
	require.Equal(t, mrpb.VariantType_INT, resp.GetMethodResponse().GetType())
	require.Equal(t, mustHex(t, "01 00 00 00 00 00 00 00"), resp.GetMethodResponse().GetValue())

	// Results the protocol cannot carry fail the model, as upstream.
	for _, method := range []string{"a_tuple", "huge"} {
		resp = call(t, s, method)
		require.Equal(t, "MODEL_FAILED", resp.GetStatus().GetCode(), method)
	}
	// Arguments that do not decode are the coordinator's fault.
	for _, v := range []*mrpb.Variant{
		{Type: mrpb.VariantType_PARQUET, Value: []byte("PAR1")},
		{Type: mrpb.VariantType_DOUBLE, Value: []byte{1, 2, 3}},
		{Type: mrpb.VariantType_JSON, Value: []byte(`{"a":`)},
	} {
		resp = call(t, s, "echo", v)
		require.Equal(t, "INVALID_ARGUMENT", resp.GetStatus().GetCode(), v.String())
	}
}

// TestStatusStrings walks the application statuses of Setup, Call and Rest and the health
// service.
func TestStatusStrings(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	info := startHost(t, python, writeFiles(t, map[string]string{"cruncher.py": cruncherPy, "main.py": trackerPy}))
	s := stub(t, info)

	require.Equal(t, "FAILED_PRECONDITION", call(t, s, "predict").GetStatus().GetCode())
	require.Equal(t, "INVALID_ARGUMENT", setup(t, s, "").GetCode())
	st := setup(t, s, "cruncher.ModelBaseClass")
	require.Equal(t, "SUCCESS", st.GetCode())
	require.Equal(t, "Instance created", st.GetMessage())
	st = setup(t, s, "cruncher.ModelBaseClass")
	require.Equal(t, "SUCCESS", st.GetCode())
	require.Equal(t, "Instance already exists", st.GetMessage())

	require.Equal(t, "INVALID_ARGUMENT", call(t, s, "").GetStatus().GetCode())
	require.Equal(t, "BAD_IMPLEMENTATION", call(t, s, "no_such_method").GetStatus().GetCode())
	require.Equal(t, "BAD_IMPLEMENTATION", call(t, s, "__init__").GetStatus().GetCode())
	resp := call(t, s, "boom")
	require.Equal(t, "MODEL_FAILED", resp.GetStatus().GetCode())
	require.Equal(t, "ValueError: model exploded", resp.GetStatus().GetMessage())
	require.Nil(t, resp.GetMethodResponse())

	rest, err := s.Rest(t.Context(), &emptypb.Empty{})
	require.NoError(t, err)
	require.Equal(t, "SUCCESS", rest.GetStatus().GetCode())
	require.Equal(t, "FAILED_PRECONDITION", call(t, s, "predict").GetStatus().GetCode())

	health := healthpb.NewHealthClient(dial(t, info.Addr()))
	for _, service := range []string{"", "dynamic_subclass.DynamicSubclassService"} {
		hr, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())
	}
	_, err = health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: "other.Service"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

// TestConstructorArguments: Setup's arguments reach the constructor in position order.
func TestConstructorArguments(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	s := stub(t, startHost(t, python, writeFiles(t, map[string]string{"cruncher.py": cruncherPy, "main.py": trackerPy})))
	args, err := variant.Args(2.0)
	require.NoError(t, err)
	kwargs, err := variant.Kwargs(map[string]any{"offset": 1})
	require.NoError(t, err)
	resp, err := s.Setup(t.Context(), &mrpb.SetupRequest{ClassName: "cruncher.ModelBaseClass", InstanceArguments: args, InstanceKwArguments: kwargs})
	require.NoError(t, err)
	require.Equal(t, "SUCCESS", resp.GetStatus().GetCode())

	feed, err := variant.Encode(candles("ETHUSDT", 10))
	require.NoError(t, err)
	require.Equal(t, "SUCCESS", call(t, s, "feed_update", feed).GetStatus().GetCode())
	subject, err := variant.Encode("ETHUSDT")
	require.NoError(t, err)
	out, err := variant.Decode(call(t, s, "predict", subject, mustVariant(t, 60), mustVariant(t, 15)).GetMethodResponse())
	require.NoError(t, err)
	require.Equal(t, 21.0, out.(map[string]any)["value"])
}

func mustVariant(t *testing.T, v any) *mrpb.Variant {
	t.Helper()
	out, err := variant.Encode(v)
	require.NoError(t, err)
	return out
}

// TestBusy: one call at a time; a second one is refused at once with RESOURCE_EXHAUSTED
// while health checks are still answered.
func TestBusy(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	info := startHost(t, python, writeFiles(t, map[string]string{"cruncher.py": cruncherPy, "main.py": trackerPy}))
	s := stub(t, info)
	require.Equal(t, "SUCCESS", setup(t, s, "cruncher.ModelBaseClass").GetCode())

	signals := t.TempDir()
	started, release := filepath.Join(signals, "started"), filepath.Join(signals, "release")
	slowArgs := mustArgs(t, started, release)
	slowDone := make(chan *mrpb.CallResponse, 1)
	go func() {
		resp, err := s.Call(context.Background(), &mrpb.CallRequest{MethodName: "slow", MethodArguments: slowArgs})
		if err != nil {
			slowDone <- &mrpb.CallResponse{Status: &mrpb.Status{Code: "RPC ERROR", Message: err.Error()}}
			return
		}
		slowDone <- resp
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(started)
		return err == nil
	}, 20*time.Second, 5*time.Millisecond, "slow call never started")

	// A second channel, as a second caller would have.
	other := stub(t, info)
	_, err := other.Call(t.Context(), &mrpb.CallRequest{MethodName: "predict"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), err)
	require.Equal(t, "Server busy", status.Convert(err).Message())
	_, err = other.Setup(t.Context(), &mrpb.SetupRequest{ClassName: "cruncher.ModelBaseClass"})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), err)

	hr, err := healthpb.NewHealthClient(dial(t, info.Addr())).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())

	require.NoError(t, os.WriteFile(release, nil, 0o644))
	var resp *mrpb.CallResponse
	select {
	case resp = <-slowDone:
	case <-time.After(30 * time.Second):
		t.Fatal("slow call never returned")
	}
	require.Equal(t, "SUCCESS", resp.GetStatus().GetCode(), resp.GetStatus().GetMessage())
	require.Equal(t, "done", string(resp.GetMethodResponse().GetValue()))
	require.Equal(t, "SUCCESS", call(t, other, "nothing").GetStatus().GetCode())
}

func mustArgs(t *testing.T, values ...any) []*mrpb.Argument {
	t.Helper()
	args, err := variant.Args(values...)
	require.NoError(t, err)
	return args
}

// TestBadImplementation: a submission without a usable model class answers
// BAD_IMPLEMENTATION, and the client retires and reports it.
func TestBadImplementation(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	for name, tc := range map[string]struct {
		files   map[string]string
		message string
	}{
		"no_subclass": {
			files:   map[string]string{"cruncher.py": cruncherPy, "main.py": "class NotAModel:\n    pass\n"},
			message: "No Inherited class found",
		},
		"no_base_module": {
			files:   map[string]string{"main.py": "class Model:\n    pass\n"},
			message: "Import error occurred importing base class module 'cruncher'",
		},
		"syntax_error": {
			files:   map[string]string{"cruncher.py": cruncherPy, "main.py": "from cruncher import ModelBaseClass\nclass M(ModelBaseClass)\n"},
			message: "Import error occurred in module 'main': SyntaxError",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			info := startHost(t, python, writeFiles(t, tc.files))
			st := setup(t, stub(t, info), "cruncher.ModelBaseClass")
			require.Equal(t, "BAD_IMPLEMENTATION", st.GetCode())
			require.Contains(t, st.GetMessage(), tc.message)

			reported := make(chan modelrunner.FailureReport, 1)
			opts := clientOptions()
			opts.Report = func(_ context.Context, r modelrunner.FailureReport) error {
				reported <- r
				return nil
			}
			client, err := modelrunner.NewClient(info, opts)
			require.NoError(t, err)
			t.Cleanup(func() { _ = client.Close() })
			require.ErrorContains(t, client.Setup(t.Context()), "BAD_IMPLEMENTATION")
			require.Equal(t, modelrunner.FailureBadImplementation, client.Stats().Reported)
			select {
			case r := <-reported: // delivered in the background
				require.Equal(t, modelrunner.FailureBadImplementation, r.Code)
				require.Contains(t, r.Reason, tc.message)
			case <-time.After(10 * time.Second):
				t.Fatal("the client never reported the model")
			}
		})
	}
}

// TestSetupFailed: a constructor that raises answers SETUP_FAILED with the exception.
func TestSetupFailed(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	s := stub(t, startHost(t, python, writeFiles(t, map[string]string{
		"cruncher.py": cruncherPy,
		"main.py":     "from cruncher import ModelBaseClass\n\nclass M(ModelBaseClass):\n    def __init__(self):\n        raise RuntimeError('no weights')\n",
	})))
	st := setup(t, s, "cruncher.ModelBaseClass")
	require.Equal(t, "SETUP_FAILED", st.GetCode())
	require.Equal(t, "RuntimeError: no weights", st.GetMessage())
}

// TestChallengePackageOnPath: a code dir without cruncher.py finds it through --path, and
// the subclass may live in a package of the code dir.
func TestChallengePackageOnPath(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	challenge := writeFiles(t, map[string]string{"cruncher.py": cruncherPy})
	code := writeFiles(t, map[string]string{
		"helpers.py":            "def double(x):\n    return 2 * x\n",
		"models/__init__.py":    "",
		"models/constant.py":    "from cruncher import ModelBaseClass\nfrom helpers import double\n\nclass Constant(ModelBaseClass):\n    def predict(self, subject, resolve_horizon_seconds, step_seconds):\n        return {'value': double(0.25)}\n",
		"models/zz_abstract.py": "import abc\nfrom cruncher import ModelBaseClass\n\nclass Abstract(ModelBaseClass, abc.ABC):\n    @abc.abstractmethod\n    def f(self): ...\n",
	})
	s := stub(t, startHost(t, python, code, "--path", challenge))
	require.Equal(t, "SUCCESS", setup(t, s, "cruncher.ModelBaseClass").GetCode())
	out, err := variant.Decode(call(t, s, "predict", mustVariant(t, "BTCUSDT"), mustVariant(t, 60), mustVariant(t, 15)).GetMethodResponse())
	require.NoError(t, err)
	require.Equal(t, map[string]any{"value": 0.5}, out)
}

func TestRuntimeCommand(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	code := t.TempDir()
	run := pyhost.NewRuntime(pyhost.Options{BaseClass: "game.Base", CacheDir: cache, Python: "/opt/py/bin/python3"})
	cmd, err := run(modelrunner.LocalModel{Args: []string{"--log-level", "debug"}, CodeDir: code, ID: "7"}, 5005)
	require.NoError(t, err)
	require.Equal(t, "/opt/py/bin/python3", cmd.Path)
	require.Len(t, cmd.Args, 13)
	hostMain := cmd.Args[2]
	require.Equal(t, []string{"/opt/py/bin/python3", "-u", hostMain, "--code-dir", code, "--port", "5005", "--host", "127.0.0.1",
		"--base-class", "game.Base", "--log-level", "debug"}, cmd.Args)
	require.True(t, strings.HasPrefix(hostMain, cache+string(filepath.Separator)), hostMain)
	require.FileExists(t, hostMain)

	_, err = run(modelrunner.LocalModel{ID: "8"}, 5006)
	require.ErrorContains(t, err, "model 8: code_dir is required")
	_, err = run(modelrunner.LocalModel{CodeDir: filepath.Join(code, "missing"), ID: "9"}, 5006)
	require.ErrorContains(t, err, "model 9: code_dir")
	require.ErrorIs(t, err, os.ErrNotExist)

	noCheck := pyhost.NewRuntime(pyhost.Options{BaseClass: "-", CacheDir: cache, Host: "0.0.0.0", Python: "python3"})
	cmd, err = noCheck(modelrunner.LocalModel{CodeDir: code, ID: "1"}, 1)
	require.NoError(t, err)
	require.NotContains(t, cmd.Args, "--base-class")
	require.Contains(t, strings.Join(cmd.Args, " "), "--host 0.0.0.0")
}

func TestExtract(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	dir, err := pyhost.Extract(cache)
	require.NoError(t, err)
	for _, f := range []string{
		"main.py",
		"crunchnode_pyhost/__init__.py",
		"crunchnode_pyhost/server.py",
		"pb/crunchdao/__init__.py",
		"pb/crunchdao/modelrunner/v1/commons_pb2.py",
		"pb/crunchdao/modelrunner/v1/dynamic_subclass_pb2.py",
	} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	// A second extraction reuses the copy, even if it was modified; a fresh cache
	// gets the same content-named directory.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.py"), []byte("# touched\n"), 0o644))
	again, err := pyhost.Extract(cache)
	require.NoError(t, err)
	require.Equal(t, dir, again)
	touched, err := os.ReadFile(filepath.Join(again, "main.py"))
	require.NoError(t, err)
	require.Equal(t, "# touched\n", string(touched))
	other, err := pyhost.Extract(t.TempDir())
	require.NoError(t, err)
	require.Equal(t, filepath.Base(dir), filepath.Base(other))
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary directories left behind")
}

// TestCheckExplainsMissingModules: Check names the interpreter and Python's own reason.
func TestCheckExplainsMissingModules(t *testing.T) {
	t.Parallel()
	fake := filepath.Join(t.TempDir(), "python3")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\necho \"ModuleNotFoundError: No module named 'grpc'\" >&2\nexit 1\n"), 0o755))
	err := pyhost.Check(fake)
	require.EqualError(t, err, fake+": ModuleNotFoundError: No module named 'grpc'")
	require.ErrorContains(t, pyhost.Check(filepath.Join(t.TempDir(), "nope")), "nope")
}

// generatorVersion is the protoc that generated host/pb.
const generatorVersion = "libprotoc 3.21.12"

// TestGeneratedProtoUpToDate regenerates the *_pb2.py modules and compares them with the
// committed ones, so a .proto change cannot leave the Python host on the old messages.
func TestGeneratedProtoUpToDate(t *testing.T) {
	t.Parallel()
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("protoc is needed to check the generated Python protocol code (CI=true): %v", err)
		}
		t.Skipf("skipping: protoc not installed (with CI=true this is a failure)")
	}
	// Other protoc versions write different (equally valid) code; the committed modules
	// come from Debian's, which is what `make deps` installs.
	version, err := exec.Command(protoc, "--version").Output()
	require.NoError(t, err)
	if v := strings.TrimSpace(string(version)); v != generatorVersion {
		t.Skipf("skipping: %s is not %s, which generated the committed modules", v, generatorVersion)
	}
	out := t.TempDir()
	cmd := exec.Command(protoc, "-I", "../modelrunner/proto", "--python_out="+out,
		"crunchdao/modelrunner/v1/commons.proto", "crunchdao/modelrunner/v1/dynamic_subclass.proto")
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, string(output))
	for _, f := range []string{"commons_pb2.py", "dynamic_subclass_pb2.py"} {
		rel := filepath.Join("crunchdao", "modelrunner", "v1", f)
		want, err := os.ReadFile(filepath.Join(out, rel))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join("host", "pb", rel))
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%s is stale: run go generate ./internal/pyhost", rel)
	}
}

// TestLocalSourceRunsPythonModels: the runtime plugged into the local model source, as
// `crunch-node dev` uses it: the host starts, answers health checks and is announced
// RUNNING, then the coordinator's client can set it up.
func TestLocalSourceRunsPythonModels(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	code := writeFiles(t, map[string]string{"cruncher.py": cruncherPy, "main.py": trackerPy})
	models := filepath.Join(t.TempDir(), "models.dev.yml")
	require.NoError(t, os.WriteFile(models, []byte(
		"models:\n  - id: \"1\"\n    model_name: tracker\n    cruncher_id: local-0001\n    runtime: python\n    code_dir: "+code+"\n"), 0o644))
	source, err := modelrunner.NewLocalSource(modelrunner.LocalOptions{
		File:         models,
		PollInterval: -1,
		Runtimes:     map[string]modelrunner.CommandFunc{"python": pyhost.NewRuntime(pyhost.Options{CacheDir: t.TempDir(), Python: python})},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	running := make(chan modelrunner.ModelInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- source.Run(ctx, func(infos []modelrunner.ModelInfo) {
			for _, info := range infos {
				if info.State == modelrunner.StateRunning {
					select {
					case running <- info:
					default:
					}
				}
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var info modelrunner.ModelInfo
	select {
	case info = <-running:
	case err := <-done:
		t.Fatalf("local source stopped: %v", err)
	case <-time.After(40 * time.Second):
		t.Fatal("the python model was never announced RUNNING")
	}
	require.Equal(t, "tracker", info.Name)
	client, err := modelrunner.NewClient(info, clientOptions())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Setup(t.Context()))
	res := client.Call(t.Context(), "truth", nil, nil)
	require.Equal(t, modelrunner.StatusSuccess, res.Status, res.Err)
	require.Equal(t, int64(1), res.Value)
}

// TestStopsWhileModelIsStuck: SIGTERM ends the host even when a model call never returns,
// so the local source's stop does not have to kill it.
func TestStopsWhileModelIsStuck(t *testing.T) {
	t.Parallel()
	python := requirePython(t)
	host := startHostProcess(t, python, writeFiles(t, map[string]string{
		"cruncher.py": cruncherPy,
		"main.py":     "import os\nfrom cruncher import ModelBaseClass\n\nclass M(ModelBaseClass):\n    def spin(self, started):\n        open(started, 'w').close()\n        while True:\n            pass\n",
	}))
	s := stub(t, host.info)
	require.Equal(t, "SUCCESS", setup(t, s, "cruncher.ModelBaseClass").GetCode())
	started := filepath.Join(t.TempDir(), "started")
	args := mustArgs(t, started)
	go func() {
		_, _ = s.Call(context.Background(), &mrpb.CallRequest{MethodName: "spin", MethodArguments: args})
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(started)
		return err == nil
	}, 20*time.Second, 5*time.Millisecond, "spin never started")

	require.NoError(t, host.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-host.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the host did not exit after SIGTERM")
	}
	require.Equal(t, 0, host.cmd.ProcessState.ExitCode())
}
