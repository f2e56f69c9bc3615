//go:build unix

package grpcwire

import (
	"crypto/tls"
	"net"
	"syscall"
)

// pending reports, without blocking and without consuming anything, whether
// the server sent something (or closed) since the connection was last read.
// A read with an expired deadline cannot tell: Go fails it before trying.
func pending(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true // let the read find out what is wrong
	}
	var n int
	var recvErr error
	if err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, recvErr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		return true
	}
	// n == 0 without an error is the peer's close; any error but "nothing
	// yet" is for the read to report.
	return n > 0 || recvErr == nil || (recvErr != syscall.EAGAIN && recvErr != syscall.EWOULDBLOCK)
}
