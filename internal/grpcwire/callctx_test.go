package grpcwire

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// callCtxWait waits for done to close, failing the test after a bound far
// longer than any deadline used here.
func callCtxWait(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done was not closed")
	}
}

func TestCallCtx(t *testing.T) {
	t.Parallel()

	t.Run("NoDeadline", func(t *testing.T) {
		t.Parallel()
		x := &callCtx{conn: t.Context()}
		_, ok := x.Deadline()
		require.False(t, ok)
		require.NoError(t, x.Err())
		select {
		case <-x.Done():
			t.Fatal("Done closed before the call ended")
		default:
		}
		x.end(context.Canceled)
		callCtxWait(t, x.Done())
		require.ErrorIs(t, x.Err(), context.Canceled)
	})

	t.Run("ErrSeesPassedDeadlineWithoutDone", func(t *testing.T) {
		t.Parallel()
		deadline := time.Now().Add(-time.Millisecond)
		x := &callCtx{conn: t.Context(), deadline: deadline}
		got, ok := x.Deadline()
		require.True(t, ok)
		require.Equal(t, deadline, got)
		require.ErrorIs(t, x.Err(), context.DeadlineExceeded)
		// Done made after the end is closed at once.
		callCtxWait(t, x.Done())
		x.end(context.Canceled)
		require.ErrorIs(t, x.Err(), context.DeadlineExceeded, "the first reason stays")
	})

	t.Run("DoneFirstAfterDeadline", func(t *testing.T) {
		t.Parallel()
		x := &callCtx{conn: t.Context(), deadline: time.Now().Add(-time.Millisecond)}
		callCtxWait(t, x.Done())
		require.ErrorIs(t, x.Err(), context.DeadlineExceeded)
	})

	t.Run("DoneFirstAfterConnectionEnd", func(t *testing.T) {
		t.Parallel()
		conn, cancel := context.WithCancel(t.Context())
		cancel()
		x := &callCtx{conn: conn}
		callCtxWait(t, x.Done())
		require.ErrorIs(t, x.Err(), context.Canceled)
	})

	t.Run("DoneClosesAtDeadline", func(t *testing.T) {
		t.Parallel()
		deadline := time.Now().Add(20 * time.Millisecond)
		x := &callCtx{conn: t.Context(), deadline: deadline}
		done := x.Done()
		require.NoError(t, x.Err())
		callCtxWait(t, done)
		require.False(t, time.Now().Before(deadline))
		require.ErrorIs(t, x.Err(), context.DeadlineExceeded)
	})

	t.Run("ConnectionEndWithDone", func(t *testing.T) {
		t.Parallel()
		conn, cancel := context.WithCancel(t.Context())
		x := &callCtx{conn: conn, deadline: time.Now().Add(time.Hour)}
		done := x.Done()
		cancel()
		callCtxWait(t, done)
		require.ErrorIs(t, x.Err(), context.Canceled)
	})

	t.Run("ConnectionEndWithoutDone", func(t *testing.T) {
		t.Parallel()
		conn, cancel := context.WithCancel(t.Context())
		x := &callCtx{conn: conn, deadline: time.Now().Add(time.Hour)}
		cancel()
		require.ErrorIs(t, x.Err(), context.Canceled)
		callCtxWait(t, x.Done())
	})

	t.Run("EndStopsWatches", func(t *testing.T) {
		t.Parallel()
		conn, cancel := context.WithCancel(t.Context())
		x := &callCtx{conn: conn, deadline: time.Now().Add(time.Hour)}
		done := x.Done()
		x.end(context.Canceled)
		callCtxWait(t, done)
		require.False(t, x.timer.Stop(), "the deadline's timer was stopped")
		require.False(t, x.stopConn(), "the connection watch was stopped")
		cancel()
		require.ErrorIs(t, x.Err(), context.Canceled)
	})

	t.Run("DerivedContext", func(t *testing.T) {
		t.Parallel()
		st := &srvStream{callCtx: callCtx{conn: t.Context(), deadline: time.Now().Add(20 * time.Millisecond)}}
		child, cancel := context.WithCancel(st)
		defer cancel()
		callCtxWait(t, child.Done())
		require.ErrorIs(t, child.Err(), context.DeadlineExceeded)
	})
}
