package dbtest

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy between a test's pools and Postgres, so that a test can take the
// database away in the middle of something (Cut) and bring it back (Restore), the way
// a network partition or a database restart does, without touching the shared server.
type Proxy struct {
	listener net.Listener
	refused  atomic.Int64
	target   string

	mu sync.Mutex
	// conns holds both ends of every proxied connection, so Cut can close them all.
	conns map[net.Conn]struct{}
	down  bool
	// replyFired is closed when a server reply containing replyPattern was swallowed.
	replyFired   chan struct{}
	replyPattern []byte
}

// NewProxy starts a proxy to the server of databaseURL on a free loopback port and
// returns it with the URL that goes through it. It stops when the test ends.
func NewProxy(t testing.TB, databaseURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatalf("parsing the database URL: %v", err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting the database proxy: %v", err)
	}
	p := &Proxy{listener: listener, target: u.Host, conns: map[net.Conn]struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.serve()
	}()
	t.Cleanup(func() {
		_ = listener.Close()
		<-done
		p.Cut()
	})
	u.Host = listener.Addr().String()
	return p, u.String()
}

// Cut closes every proxied connection at once and refuses new ones (they are accepted
// and closed immediately, which clients see as the server going away).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

func (p *Proxy) cutLocked() {
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// Restore lets new connections through again. Connections cut earlier stay dead; the
// clients' pools replace them.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Refused counts the connections refused while the proxy was cut: a sign that clients
// kept trying during the outage.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

// CutOnReply arms a cut at an exact moment: the first reply from the server that
// contains pattern is swallowed and every connection is cut, so the client never
// learns the outcome of what it asked (a COMMIT that succeeded, for example). The
// returned channel is closed when that has happened.
func (p *Proxy) CutOnReply(pattern []byte) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replyPattern = bytes.Clone(pattern)
	p.replyFired = make(chan struct{})
	return p.replyFired
}

func (p *Proxy) serve() {
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return // listener closed at the end of the test
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			p.refused.Add(1)
			_ = client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.down { // cut while dialling
			p.mu.Unlock()
			p.refused.Add(1)
			_ = client.Close()
			_ = server.Close()
			continue
		}
		p.conns[client] = struct{}{}
		p.conns[server] = struct{}{}
		p.mu.Unlock()
		go p.pipe(client, server, false)
		go p.pipe(server, client, true)
	}
}

// pipe copies from src to dst until either side closes, then closes both. Replies
// (server to client) are checked against the armed pattern before being forwarded.
func (p *Proxy) pipe(src, dst net.Conn, reply bool) {
	defer p.forget(src, dst)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if reply && p.swallow(buf[:n]) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF, a reset or a Cut: the connection is over either way
			return
		}
	}
}

// swallow reports whether chunk fires the armed pattern; if so, everything is cut
// before the chunk reaches the client.
func (p *Proxy) swallow(chunk []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.replyPattern == nil || !bytes.Contains(chunk, p.replyPattern) {
		return false
	}
	p.replyPattern = nil
	p.cutLocked()
	close(p.replyFired)
	return true
}

func (p *Proxy) forget(a, b net.Conn) {
	_ = a.Close()
	_ = b.Close()
	p.mu.Lock()
	delete(p.conns, a)
	delete(p.conns, b)
	p.mu.Unlock()
}
