package grpcwire

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context.Context half of a call's context: the deadline from
// grpc-timeout, ended by the client's RST_STREAM, by the connection's end and
// once the call is answered.
//
// context.WithDeadline would cost a timer and three allocations per call,
// and most handlers never wait on Done. So the channel, the deadline's timer
// and the connection watch are only made by the first Done; until then Err
// notices a passed deadline or a dead connection by looking at them itself.
type callCtx struct {
	conn     context.Context // the connection's context
	deadline time.Time       // zero: none

	mu       sync.Mutex
	doneCh   chan struct{} // made by the first Done
	err      error
	timer    *time.Timer // ends the call at the deadline once Done was called
	stopConn func() bool // stops watching conn once Done was called
}

// Deadline is the call's grpc-timeout deadline.
func (x *callCtx) Deadline() (time.Time, bool) {
	return x.deadline, !x.deadline.IsZero()
}

// Done returns a channel closed when the call ends. The first call arms the
// watches that close it.
func (x *callCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.doneCh != nil {
		return x.doneCh
	}
	if x.err == nil {
		x.noticeLocked() // before doneCh exists, which endLocked would close
	}
	x.doneCh = make(chan struct{})
	if x.err != nil {
		close(x.doneCh)
		return x.doneCh
	}
	if !x.deadline.IsZero() {
		x.timer = time.AfterFunc(time.Until(x.deadline), func() { x.end(context.DeadlineExceeded) })
	}
	x.stopConn = context.AfterFunc(x.conn, func() { x.end(context.Canceled) })
	return x.doneCh
}

// Err says why the call ended, nil while it runs.
func (x *callCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err == nil {
		x.noticeLocked()
	}
	return x.err
}

// noticeLocked ends the call if its deadline passed or its connection ended
// while no watch was armed to say so.
func (x *callCtx) noticeLocked() {
	switch {
	case !x.deadline.IsZero() && !time.Now().Before(x.deadline):
		x.endLocked(context.DeadlineExceeded)
	case x.conn.Err() != nil:
		x.endLocked(context.Canceled)
	}
}

// end ends the call with err unless it already ended.
func (x *callCtx) end(err error) {
	x.mu.Lock()
	x.endLocked(err)
	x.mu.Unlock()
}

func (x *callCtx) endLocked(err error) {
	if x.err != nil {
		return
	}
	x.err = err
	if x.doneCh != nil {
		close(x.doneCh)
	}
	if x.timer != nil {
		x.timer.Stop()
	}
	if x.stopConn != nil {
		x.stopConn()
	}
}
