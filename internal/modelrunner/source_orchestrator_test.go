package modelrunner

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// orchestratorSample is the ModelState from the orchestrator's own test.
const orchestratorSample = `{"deployment_id": "mock_model_id_20250915_143034_791",
 "model_id": "mock_model_id",
 "infos": {"model_name": "mock_model_name", "cruncher_id": "test_cruncher_id",
           "cruncher_name": "test_cruncher_id", "cruncher_wallet_pubkey": "test_cruncher_id",
           "cruncher_hotkey": ""},
 "state": "RUNNING", "ip": "127.0.0.1", "port": 8080}`

var orchestratorSampleInfo = ModelInfo{
	CruncherWalletPubkey: "test_cruncher_id",
	DeploymentID:         "mock_model_id_20250915_143034_791",
	Host:                 "127.0.0.1",
	ID:                   "mock_model_id",
	Name:                 "mock_model_name",
	PlayerID:             "test_cruncher_id",
	PlayerName:           "test_cruncher_id",
	Port:                 8080,
	State:                StateRunning,
}

func modelStateJSON(m ModelInfo, state string) string {
	return fmt.Sprintf(`{"deployment_id":%q,"model_id":%q,"infos":{"model_name":%q,"cruncher_id":%q,"cruncher_name":%q,"cruncher_wallet_pubkey":null,"cruncher_hotkey":null},"state":%q,"ip":%q,"port":%d}`,
		m.DeploymentID, m.ID, m.Name, m.PlayerID, m.PlayerName, state, m.Host, m.Port)
}

func TestParseOrchestratorMessage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name        string
		in          string
		want        OrchestratorMessage
		wantErr     string
		wantSkipped int
	}{
		{
			name: "InitSample",
			in:   `{"event": "init", "data": [` + orchestratorSample + `]}`,
			want: OrchestratorMessage{Event: EventInit, Models: []ModelInfo{orchestratorSampleInfo}},
		},
		{
			name: "PortAsStringNameFallback",
			in:   `{"event":"update","data":[{"deployment_id":"d","model_id":"7","infos":{"model_name":"m","cruncher_id":"c7"},"state":"running","ip":"localhost","port":"32768"}]}`,
			want: OrchestratorMessage{Event: EventUpdate, Models: []ModelInfo{{DeploymentID: "d", Host: "localhost", ID: "7", Name: "m", PlayerID: "c7", PlayerName: "c7", Port: 32768, State: StateRunning}}},
		},
		{
			name: "StoppedWithoutAddress",
			in:   `{"event":"update","data":[{"model_id":"7","state":"STOPPED","ip":null,"port":null}]}`,
			want: OrchestratorMessage{Event: EventUpdate, Models: []ModelInfo{{ID: "7", State: StateStopped}}},
		},
		{
			name:        "BadEntriesSkipped",
			in:          `{"event":"init","data":[{"model_id":""},{"model_id":"1","state":"RUNNING","ip":"h","port":"x"},{"model_id":"2","state":"RUNNING"},{"model_id":"3","state":"RUNNING","ip":"h","port":1.5},7,{"model_id":"4","state":"RUNNING","ip":"h","port":80.0}]}`,
			want:        OrchestratorMessage{Event: EventInit, Models: []ModelInfo{{ID: "4", Host: "h", Port: 80, State: StateRunning}}},
			wantSkipped: 5,
		},
		{
			name: "EmptyInit",
			in:   `{"event":"init","data":[]}`,
			want: OrchestratorMessage{Event: EventInit, Models: []ModelInfo{}},
		},
		{
			name: "UnknownEvent",
			in:   `{"event":"hello","data":{"x":1}}`,
			want: OrchestratorMessage{Event: "hello"},
		},
		{name: "ErrorFrame", in: `{"error": "crunch id is required"}`, wantErr: "orchestrator error: crunch id is required"},
		{name: "Garbage", in: `not json`, wantErr: "parsing orchestrator message"},
		{name: "DataNotList", in: `{"event":"init","data":{"a":1}}`, wantErr: "parsing orchestrator init data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseOrchestratorMessage([]byte(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, got.Skipped, tt.wantSkipped, "%v", got.Skipped)
			got.Skipped = nil
			require.Equal(t, tt.want, got)
		})
	}
}

func TestEncodeFailureReport(t *testing.T) {
	t.Parallel()

	b, err := EncodeFailureReport(FailureReport{Code: FailureMultipleFailed, Host: "10.0.0.5", ModelID: "1", Reason: "101 consecutive failures"})
	require.NoError(t, err)
	require.JSONEq(t, `{"event":"report_failure","data":[{"model_id":"1","failure_code":"MULTIPLE_FAILED","failure_reason":"101 consecutive failures","ip":"10.0.0.5"}]}`, string(b))

	b, err = EncodeFailureReport(FailureReport{Code: FailureConnectionFailed, Host: "h", ModelID: "1"})
	require.NoError(t, err)
	require.Contains(t, string(b), `"failure_reason":null`)
}

func FuzzParseOrchestratorMessage(f *testing.F) {
	f.Add([]byte(`{"event": "init", "data": [` + orchestratorSample + `]}`))
	f.Add([]byte(`{"event":"update","data":[{"model_id":"7","state":"RUNNING","ip":"h","port":"50051"}]}`))
	f.Add([]byte(`{"error":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := ParseOrchestratorMessage(data)
		if err != nil {
			return
		}
		for _, m := range msg.Models {
			if m.ID == "" {
				t.Fatalf("model without ID accepted from %q", data)
			}
			if m.Port < 0 || m.Port > 65535 {
				t.Fatalf("port %d accepted from %q", m.Port, data)
			}
			if m.State == StateRunning && (m.Host == "" || m.Port == 0) {
				t.Fatalf("RUNNING model without address accepted from %q", data)
			}
		}
	})
}

// fakeOrchestrator is a WebSocket server the test drives frame by frame.
type fakeOrchestrator struct {
	conns  chan *fakeConn
	server *httptest.Server
}

type fakeConn struct {
	conn *websocket.Conn
	done chan struct{}
}

func newFakeOrchestrator(t *testing.T) *fakeOrchestrator {
	t.Helper()
	f := &fakeOrchestrator{conns: make(chan *fakeConn, 4)}
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		if r.URL.Path == "/" {
			_ = conn.Write(r.Context(), websocket.MessageText, []byte(`{"error":"crunch id is required"}`))
			_ = conn.Close(websocket.StatusPolicyViolation, "")
			return
		}
		fc := &fakeConn{conn: conn, done: make(chan struct{})}
		f.conns <- fc
		select {
		case <-fc.done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(f.server.Close)
	return f
}

func (f *fakeOrchestrator) url(crunchID string) string {
	return "ws" + strings.TrimPrefix(f.server.URL, "http") + "/" + crunchID
}

func (f *fakeOrchestrator) accept(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-f.conns:
		t.Cleanup(func() { c.close() })
		return c
	case <-time.After(15 * time.Second):
		t.Fatal("no connection to the fake orchestrator")
		return nil
	}
}

func (c *fakeConn) send(t *testing.T, frame string) {
	t.Helper()
	require.NoError(t, c.conn.Write(t.Context(), websocket.MessageText, []byte(frame)))
}

func (c *fakeConn) read(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	_, data, err := c.conn.Read(ctx)
	require.NoError(t, err)
	return string(data)
}

func (c *fakeConn) close() {
	select {
	case <-c.done:
	default:
		_ = c.conn.Close(websocket.StatusGoingAway, "bye")
		close(c.done)
	}
}

// nextSnapshot waits for a snapshot that satisfies cond.
func nextSnapshot(t *testing.T, ch <-chan []ModelInfo, cond func(map[string]ModelInfo) bool) map[string]ModelInfo {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ms := <-ch:
			byID := map[string]ModelInfo{}
			for _, m := range ms {
				byID[m.ID] = m
			}
			if cond(byID) {
				return byID
			}
		case <-deadline:
			t.Fatal("no matching snapshot")
		}
	}
}

func TestOrchestratorSource(t *testing.T) {
	t.Parallel()

	fake := newFakeOrchestrator(t)
	src, err := NewOrchestratorSource(OrchestratorOptions{URL: fake.url("crunch-1"), ReconnectDelay: 20 * time.Millisecond, Logger: testLogger()})
	require.NoError(t, err)
	snapshots := make(chan []ModelInfo, 32)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(ms []ModelInfo) { snapshots <- ms }) }()

	two := ModelInfo{DeploymentID: "2_x", Host: "localhost", ID: "2", Name: "two", PlayerID: "p2", PlayerName: "P2", Port: 50051, State: StateRunning}
	conn := fake.accept(t)
	conn.send(t, `{"event":"init","data":[`+orchestratorSample+`,`+strings.Replace(modelStateJSON(two, "RUNNING"), `"port":50051`, `"port":"50051"`, 1)+`]}`)
	got := nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return len(m) == 2 })
	require.Equal(t, orchestratorSampleInfo, got["mock_model_id"])
	require.Equal(t, two, got["2"])

	// Garbage and error frames are ignored; the connection survives.
	conn.send(t, `garbage`)
	conn.send(t, `{"event":"update","data":[`+modelStateJSON(two, "STOPPED")+`]}`)
	got = nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return m["2"].State == StateStopped })
	require.Equal(t, StateRunning, got["mock_model_id"].State)

	// Reports carry the ip exactly as the orchestrator sent it.
	require.NoError(t, src.ReportFailure(t.Context(), FailureReport{Code: FailureMultipleTimeout, ModelID: "mock_model_id", Reason: "101 consecutive timeouts"}))
	require.JSONEq(t, `{"event":"report_failure","data":[{"model_id":"mock_model_id","failure_code":"MULTIPLE_TIMEOUT","failure_reason":"101 consecutive timeouts","ip":"127.0.0.1"}]}`, conn.read(t))

	// Disconnect; a report made meanwhile is sent after the reconnect, and
	// the new init rebuilds the list: the old deployment is replaced, 3 is
	// new, 2 stays STOPPED.
	conn.close()
	require.NoError(t, src.ReportFailure(t.Context(), FailureReport{Code: FailureLowPerformance, Host: "127.0.0.1", ModelID: "mock_model_id"}))
	conn2 := fake.accept(t)
	require.JSONEq(t, `{"event":"report_failure","data":[{"model_id":"mock_model_id","failure_code":"LOW_PERFORMANCE","failure_reason":null,"ip":"127.0.0.1"}]}`, conn2.read(t))

	redeployed := orchestratorSampleInfo
	redeployed.DeploymentID = "mock_model_id_20250916_000000_000"
	redeployed.Name, redeployed.PlayerName = "renamed", "Renamed"
	redeployed.CruncherWalletPubkey = "" // modelStateJSON sends null
	three := ModelInfo{DeploymentID: "3_x", Host: "10.0.0.3", ID: "3", Name: "three", PlayerID: "p3", PlayerName: "P3", Port: 50051, State: StateRunning}
	conn2.send(t, `{"event":"init","data":[`+modelStateJSON(redeployed, "RUNNING")+`,`+modelStateJSON(three, "RUNNING")+`]}`)
	got = nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return len(m) == 3 })
	require.Equal(t, redeployed, got["mock_model_id"])
	require.Equal(t, three, got["3"])
	require.Equal(t, StateStopped, got["2"].State)

	// An init without a model stops it (its STOPPED update may have been lost).
	conn2.send(t, `{"event":"init","data":[`+modelStateJSON(three, "RUNNING")+`]}`)
	got = nextSnapshot(t, snapshots, func(m map[string]ModelInfo) bool { return m["mock_model_id"].State == StateStopped })
	require.Equal(t, StateRunning, got["3"].State)

	cancel()
	require.NoError(t, <-done)
}

func TestOrchestratorSourceOptions(t *testing.T) {
	t.Parallel()

	require.Equal(t, "ws://orchestrator:9091/condor", OrchestratorURL("orchestrator", 9091, "condor"))
	require.Equal(t, "ws://[::1]:9091/c", OrchestratorURL("::1", 9091, "c"))
	for _, bad := range []string{"", "http://x/y", "ws:///nohost"} {
		_, err := NewOrchestratorSource(OrchestratorOptions{URL: bad})
		require.Error(t, err, bad)
	}
}

func TestOrchestratorSourceRetriesUntilUp(t *testing.T) {
	t.Parallel()

	// Nothing listens at first: Run keeps retrying until ctx ends.
	src, err := NewOrchestratorSource(OrchestratorOptions{URL: "ws://127.0.0.1:1/c", ReconnectDelay: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, src.Run(ctx, func([]ModelInfo) { t.Error("no snapshot expected") }))
}
