package modelrunner

import (
	"context"
	"net"
	"strconv"
)

// State is a model's run state as the orchestrator reports it.
type State string

// Run states. Only RUNNING models are connected and called.
const (
	// StateRecovering means the orchestrator is restarting the model; it may
	// come back, but until then it is not callable.
	StateRecovering State = "RECOVERING"
	StateRunning    State = "RUNNING"
	// StateStarting is used by the local source while a model host process
	// boots; the orchestrator never sends it.
	StateStarting State = "STARTING"
	StateStopped  State = "STOPPED"
)

// ModelInfo identifies one deployed model and where to reach it. ID is stable
// across resubmissions; DeploymentID changes with every new run, and a new one
// means a new runner to connect to even at the same address.
type ModelInfo struct {
	// CruncherHotkey and CruncherWalletPubkey are kept for the mTLS wallet
	// mode, which checks the model's proof of ownership against them.
	CruncherHotkey       string
	CruncherWalletPubkey string
	DeploymentID         string
	// Host is the address exactly as the source gave it; failure reports
	// must echo it unchanged for the orchestrator to match the run.
	Host       string
	ID         string
	Name       string
	PlayerID   string
	PlayerName string
	Port       int
	State      State
}

// Addr is host:port for dialing.
func (m ModelInfo) Addr() string {
	return net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
}

// FailureCode is why a coordinator asks the orchestrator to stop a model.
type FailureCode string

// Failure codes understood by the orchestrator.
const (
	FailureBadImplementation FailureCode = "BAD_IMPLEMENTATION"
	FailureConnectionFailed  FailureCode = "CONNECTION_FAILED"
	FailureLowPerformance    FailureCode = "LOW_PERFORMANCE"
	FailureMultipleFailed    FailureCode = "MULTIPLE_FAILED"
	FailureMultipleTimeout   FailureCode = "MULTIPLE_TIMEOUT"
)

// FailureReport asks a source to retire a model run.
type FailureReport struct {
	Code FailureCode
	// DeploymentID and Host identify the run being reported, so a report
	// about an old run does not stop its replacement.
	DeploymentID string
	Host         string
	ModelID      string
	Reason       string
}

// Source discovers models: the orchestrator WebSocket, a static list or local
// model host processes. The predict role sees only this interface, so
// production and local development share one code path.
type Source interface {
	// Run discovers models until ctx ends, calling sink with a full snapshot
	// (sorted by ID) whenever the set may have changed. A snapshot lists every
	// model seen since Run started with its latest State; a model that went
	// away stays listed as STOPPED, so a mirror of the list can record that.
	// sink is called from one goroutine at a time and must not block for
	// long. Run returns nil when ctx ends, or an error when it cannot run at
	// all.
	Run(ctx context.Context, sink func([]ModelInfo)) error

	// ReportFailure asks the source to stop a model run. Sources that cannot
	// stop models log the report and mark the model STOPPED themselves.
	ReportFailure(ctx context.Context, report FailureReport) error
}
