package grpcwire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ErrServerStopped is returned by Serve when it is called after Stop or
// GracefulStop, as grpc-go's Serve does.
var ErrServerStopped = errors.New("grpcwire: server stopped")

// Handler answers one unary call. req is the request message without the
// 5-byte gRPC prefix; it is only valid until the handler returns (its buffer
// is reused), so a handler that keeps it must copy it. An error made with
// google.golang.org/grpc/status sets grpc-status and grpc-message; a context
// error becomes Canceled or DeadlineExceeded; any other error is Unknown.
type Handler func(ctx context.Context, req []byte) (resp []byte, err error)

// ServerOptions configures a Server. The zero value serves plain-text HTTP/2
// (h2c, which is what gRPC clients speak without TLS) with grpc's defaults.
type ServerOptions struct {
	// MaxRecvMsgSize bounds a request message; a larger one is answered
	// ResourceExhausted without running the handler. 0 means 4 MiB, grpc's
	// default.
	MaxRecvMsgSize int

	// Logger receives connection-level problems at debug level; nil discards
	// them.
	Logger *slog.Logger

	// TLSConfig, when set, makes the server speak TLS; "h2" is added to its
	// NextProtos because gRPC clients require ALPN.
	TLSConfig *tls.Config
}

// Server serves unary gRPC calls over HTTP/2. It exists because grpc-go's
// server costs about 50 µs of CPU per call (a goroutine hand-off per frame,
// per-stream bookkeeping, a separate writer goroutine), while a model host
// answers small calls one at a time: here one goroutine reads each
// connection, each call's handler runs in its own goroutine, and the whole
// answer leaves in one write.
type Server struct {
	handlers  map[string]Handler
	logger    *slog.Logger
	maxRecv   int
	tlsConfig *tls.Config

	mu        sync.Mutex
	conns     map[*srvConn]struct{}
	connWG    sync.WaitGroup
	listeners map[net.Listener]struct{}
	stopped   bool
}

// NewServer builds a Server; register methods with Handle, then call Serve.
func NewServer(opts ServerOptions) *Server {
	s := &Server{
		handlers:  map[string]Handler{},
		logger:    opts.Logger,
		maxRecv:   opts.MaxRecvMsgSize,
		conns:     map[*srvConn]struct{}{},
		listeners: map[net.Listener]struct{}{},
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxRecv <= 0 {
		s.maxRecv = srvDefaultMaxRecv
	}
	if opts.TLSConfig != nil {
		s.tlsConfig = opts.TLSConfig.Clone()
		if !slices.Contains(s.tlsConfig.NextProtos, "h2") {
			s.tlsConfig.NextProtos = append([]string{"h2"}, s.tlsConfig.NextProtos...)
		}
	}
	return s
}

// Handle registers h for fullMethod ("/package.Service/Method"). It must be
// called before Serve: the method table is read without a lock on every call.
func (s *Server) Handle(fullMethod string, h Handler) {
	s.handlers[fullMethod] = h
}

// Serve accepts connections on lis until Stop or GracefulStop; it then
// returns nil (or ErrServerStopped if the server was already stopped). Any
// other accept error is returned after closing lis.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		_ = lis.Close()
		return ErrServerStopped
	}
	s.listeners[lis] = struct{}{}
	s.mu.Unlock()

	var backoff time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil {
			s.mu.Lock()
			stopped := s.stopped
			s.mu.Unlock()
			if stopped {
				return nil
			}
			// Temporary is deprecated on net.Error but is still how an
			// accept loop tells EMFILE from a closed listener.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Debug("grpcwire: accept failed; retrying", slog.Any("error", err), slog.Duration("backoff", backoff))
				time.Sleep(backoff)
				continue
			}
			s.mu.Lock()
			delete(s.listeners, lis)
			s.mu.Unlock()
			_ = lis.Close()
			return fmt.Errorf("grpcwire: accepting: %w", err)
		}
		backoff = 0
		if s.tlsConfig != nil {
			nc = tls.Server(nc, s.tlsConfig)
		}
		c := newSrvConn(s, nc)
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			_ = nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Stop closes the listeners and cuts every connection at once; running
// handlers see their context cancelled. It waits for the connections'
// readers to finish, not for the handlers.
func (s *Server) Stop() {
	for _, c := range s.stopAccepting() {
		c.close()
	}
	s.connWG.Wait()
}

// GracefulStop closes the listeners, sends GOAWAY on every connection and
// waits for the calls already received to be answered; each connection
// closes once idle. When ctx ends first, the rest is cut as by Stop.
func (s *Server) GracefulStop(ctx context.Context) {
	for _, c := range s.stopAccepting() {
		c.goAway()
	}
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
		<-done
	}
}

// stopAccepting marks the server stopped, closes its listeners and returns
// its connections.
func (s *Server) stopAccepting() []*srvConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	for lis := range s.listeners {
		_ = lis.Close()
	}
	clear(s.listeners)
	conns := make([]*srvConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

func (s *Server) connDone(c *srvConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

const (
	// srvWindow is the receive window we grant per stream and per
	// connection: large enough that a client never waits for a
	// WINDOW_UPDATE in the middle of a request, so a request costs no
	// flow-control frames at all.
	srvWindow = 8 << 20
	// srvDefaultWindow is HTTP/2's initial window, both ways, until SETTINGS
	// say otherwise.
	srvDefaultWindow = 65535
	// srvMaxReadFrame is the largest frame we accept: HTTP/2's default, so
	// it needs no SETTINGS entry.
	srvMaxReadFrame = 16 << 10
	// srvReadBufSize lets one read syscall take a request's HEADERS and
	// DATA frames together.
	srvReadBufSize = 64 << 10
	// srvWriteChunk bounds how much of a large answer is buffered before a
	// write, so that a multi-megabyte answer does not double its memory.
	srvWriteChunk = 256 << 10
	// srvKeepBuf is the largest buffer kept for reuse: typical requests and
	// answers are far smaller, and a rare huge one should not stay pinned.
	srvKeepBuf = 64 << 10
	// srvMaxHeaderList bounds a request's decoded header list, as
	// SETTINGS_MAX_HEADER_LIST_SIZE would (counted the same way).
	srvMaxHeaderList = 1 << 20
	// srvDefaultMaxRecv is grpc's default receive limit.
	srvDefaultMaxRecv = 4 << 20
	// srvHandshakeTimeout bounds the TLS handshake and the client preface.
	srvHandshakeTimeout = 10 * time.Second
	// srvLinger bounds how long a drained connection waits for the client
	// to close its side after our GOAWAY, so that our last answer is not
	// destroyed by a TCP reset.
	srvLinger = time.Second
)

// srvConn is one HTTP/2 connection. Its serve goroutine reads every frame;
// handlers write their own answers under wmu.
type srvConn struct {
	s      *Server
	nc     net.Conn
	br     *bufio.Reader
	fr     *http2.Framer
	frames frameReader
	hdec   *hpack.Decoder
	ctx    context.Context // parent of every call's context; cancelled when the connection ends
	cancel context.CancelFunc

	killOnce sync.Once
	dead     atomic.Bool // the connection is closed: nothing more can be written

	// Owned by the serve goroutine.
	sawSettings bool
	maxStreamID uint32        // highest stream the client opened
	recvUnacked uint32        // connection-level bytes received and not yet returned by WINDOW_UPDATE
	hdrStream   *srvStream    // stream whose header block is being decoded; nil discards the fields
	hdrID       uint32        // stream of the header block being decoded, 0 when none
	hdrEnd      bool          // the header block's HEADERS frame ended the stream
	hdrFrags    int           // header block bytes so far
	hdrSize     int           // decoded header list size so far
	hdrTooBig   bool          // the decoded header list exceeded srvMaxHeaderList
	hdrWhole    bool          // the block came whole in its HEADERS frame
	hdrTimeout  time.Duration // the block's grpc-timeout, -1 when none
	hdrCache    srvHeaderCache

	// wmu guards everything below and every write to nc, so that frames of
	// different streams never interleave mid-frame.
	wmu          sync.Mutex
	wcond        sync.Cond // L is &wmu; broadcast when a send window grows, a stream is reset or the connection dies
	wbuf         []byte    // frames waiting for the next write
	hblock       []byte    // header block being built
	tableUpdate  bool      // the next header block must start with a table size update
	tableShrunk  bool      // the client shrank our HPACK table: we announced size 0
	ctIndexed    bool      // content-type: application/grpc is in the client's table
	okIndexed    bool      // grpc-status: 0 is in the client's table
	streams      map[uint32]*srvStream
	lastAccepted uint32 // highest stream accepted for processing, for GOAWAY
	active       int    // streams accepted and not yet answered or reset
	ready        bool   // our SETTINGS went out; GOAWAY may follow
	draining     bool   // we sent GOAWAY: refuse new streams
	closeIdle    bool   // close as soon as no stream is active (GOAWAY either way)
	halfClosed   bool   // our side is shut: write nothing more
	sendWindow   int64  // connection-level send window
	peerWindow   int64  // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int    // the client's SETTINGS_MAX_FRAME_SIZE
}

// srvStream is one call. It is also the handler's context, so that
// IncomingMetadata and SetHeader find it without a context.WithValue
// allocation per call.
type srvStream struct {
	callCtx // the deadline is set while decoding the request headers
	c       *srvConn
	id      uint32

	// Set while decoding the request headers (serve goroutine).
	handler Handler
	path    string
	post    bool
	ctOK    bool
	badTO   bool
	md      []hpack.HeaderField
	mdArr   [4]hpack.HeaderField // backs md for the few headers a client usually sends

	// Request body (serve goroutine until the handler starts, then the
	// handler's).
	buf         *srvBuf
	want        int // 5 + message length once the prefix is read, else 0
	recvUnacked uint32
	ended       bool // the client ended its side (END_STREAM)
	running     bool // the handler goroutine was started

	// Handler goroutine only.
	outHeader []hpack.HeaderField

	// Guarded by c.wmu.
	sendWindow int64
	done       bool // answered or reset: write nothing more, not in c.streams
}

type srvStreamKey struct{}

// Value answers srvStreamKey with the stream itself; a call's context
// carries no other value.
func (st *srvStream) Value(key any) any {
	if _, ok := key.(srvStreamKey); ok {
		return st
	}
	return nil
}

func newSrvConn(s *Server, nc net.Conn) *srvConn {
	c := &srvConn{
		s:            s,
		nc:           nc,
		streams:      map[uint32]*srvStream{},
		sendWindow:   srvDefaultWindow,
		peerWindow:   srvDefaultWindow,
		peerMaxFrame: srvMaxReadFrame,
	}
	c.wcond.L = &c.wmu
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// kill closes the connection without taking wmu, so that it also unblocks
// a write stuck on a client that stopped reading.
func (c *srvConn) kill() {
	c.killOnce.Do(func() {
		c.dead.Store(true)
		_ = c.nc.Close()
		c.cancel()
	})
}

// close kills the connection and wakes the handlers waiting for a send
// window.
func (c *srvConn) close() {
	c.kill()
	c.wmu.Lock()
	c.wcond.Broadcast()
	c.wmu.Unlock()
}

func (c *srvConn) serve() {
	defer c.s.connDone(c)
	defer c.close()
	if err := c.handshake(); err != nil {
		c.s.logger.Debug("grpcwire: handshake failed", slog.String("remote", c.nc.RemoteAddr().String()), slog.Any("error", err))
		return
	}
	for {
		f, h, err := c.frames.next()
		if err == nil {
			err = c.onFrame(f, h)
		}
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.resetStream(se.StreamID, se.Code)
				continue
			}
			c.connError(err)
			return
		}
		if c.br.Buffered() == 0 {
			// About to block on the socket: send what the frames just read
			// called for (SETTINGS and PING acks, WINDOW_UPDATEs) in one
			// write.
			c.wmu.Lock()
			c.flushLocked()
			c.wmu.Unlock()
		}
	}
}

// handshake runs TLS, reads the client preface and sends our SETTINGS.
func (c *srvConn) handshake() error {
	if err := c.nc.SetReadDeadline(time.Now().Add(srvHandshakeTimeout)); err != nil {
		return fmt.Errorf("setting the handshake deadline: %w", err)
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(c.ctx, srvHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "h2" {
			return fmt.Errorf("client negotiated %q, not h2", p)
		}
	}
	c.br = bufio.NewReaderSize(c.nc, srvReadBufSize)
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil {
		return fmt.Errorf("reading the client preface: %w", err)
	}
	if string(preface[:]) != http2.ClientPreface {
		return errors.New("bad client preface")
	}
	if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("clearing the handshake deadline: %w", err)
	}
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(srvMaxReadFrame)
	c.frames = frameReader{fr: c.fr, r: c.br}
	c.hdec = hpack.NewDecoder(4096, c.onHeaderField)
	c.hdec.SetMaxStringLength(srvMaxHeaderList)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = srvAppendFrameHeader(c.wbuf, 6, http2.FrameSettings, 0, 0)
	c.wbuf = binary.BigEndian.AppendUint16(c.wbuf, uint16(http2.SettingInitialWindowSize))
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, srvWindow)
	c.wbuf = srvAppendWindowUpdate(c.wbuf, 0, srvWindow-srvDefaultWindow)
	c.ready = true
	c.flushLocked()
	if c.dead.Load() {
		return errors.New("writing SETTINGS failed")
	}
	return nil
}

// connError ends the connection after a read or protocol error, telling the
// client why when it is a protocol error.
func (c *srvConn) connError(err error) {
	code := http2.ErrCodeProtocol
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		code = http2.ErrCode(ce)
	case errors.Is(err, http2.ErrFrameTooLarge):
		code = http2.ErrCodeFrameSize
	default:
		// EOF, a reset, a read deadline after GOAWAY, or Stop: nothing to say.
		if !c.dead.Load() && !errors.Is(err, io.EOF) {
			c.s.logger.Debug("grpcwire: reading", slog.String("remote", c.nc.RemoteAddr().String()), slog.Any("error", err))
		}
		return
	}
	c.s.logger.Debug("grpcwire: protocol error", slog.String("remote", c.nc.RemoteAddr().String()), slog.String("code", code.String()), slog.Any("error", err), slog.Any("detail", c.fr.ErrorDetail()))
	c.wmu.Lock()
	c.wbuf = srvAppendGoAway(c.wbuf, c.lastAccepted, code)
	c.flushLocked()
	c.wmu.Unlock()
}

// onFrame handles a frame read by frameReader: f, or the HEADERS frame h
// when f is nil.
func (c *srvConn) onFrame(f http2.Frame, h headersFrame) error {
	if !c.sawSettings {
		if _, ok := f.(*http2.SettingsFrame); !ok {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.sawSettings = true
	}
	switch f := f.(type) {
	case nil:
		return c.onHeaders(h)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.ContinuationFrame:
		return c.onHeaderFragment(f.HeaderBlockFragment(), f.HeadersEnded())
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.wmu.Lock()
			c.wbuf = srvAppendFrameHeader(c.wbuf, 8, http2.FramePing, http2.FlagPingAck, 0)
			c.wbuf = append(c.wbuf, f.Data[:]...)
			c.wmu.Unlock()
		}
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		if f.StreamID > c.maxStreamID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.endStream(f.StreamID)
	case *http2.GoAwayFrame:
		// The client opens no more streams: close once the running ones
		// are answered.
		c.wmu.Lock()
		c.closeIdle = true
		if c.active == 0 {
			c.halfCloseLocked()
		}
		c.wmu.Unlock()
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	// PRIORITY, PRIORITY_UPDATE and unknown frames are ignored.
	return nil
}

func (c *srvConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			// The change applies to every open stream's window (RFC 9113
			// 6.9.2).
			delta := int64(s.Val) - c.peerWindow
			c.peerWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
			}
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			if s.Val < 4096 && !c.tableShrunk {
				c.tableUpdate, c.tableShrunk = true, true
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.wbuf = srvAppendFrameHeader(c.wbuf, 0, http2.FrameSettings, http2.FlagSettingsAck, 0)
	c.wcond.Broadcast()
	return nil
}

func (c *srvConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.wmu.Lock()
	var overflow *srvStream
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > math.MaxInt32 {
			c.wmu.Unlock()
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	} else if st := c.streams[f.StreamID]; st != nil {
		st.sendWindow += int64(f.Increment)
		if st.sendWindow > math.MaxInt32 {
			c.resetStreamLocked(st, http2.ErrCodeFlowControl)
			overflow = st
		}
	}
	c.wcond.Broadcast()
	c.wmu.Unlock()
	if overflow != nil {
		c.endStreamWork(overflow)
	}
	return nil
}

// onHeaders starts a header block: a new call, or trailers (or a late
// frame) for an existing stream, whose fields are decoded only to keep the
// HPACK table in step.
func (c *srvConn) onHeaders(f headersFrame) error {
	id := f.streamID
	c.hdrID = id
	c.hdrEnd = f.endStream
	c.hdrFrags = 0
	c.hdrSize = 0
	c.hdrTooBig = false
	c.hdrWhole = f.endHeaders
	c.hdrTimeout = -1
	c.hdrStream = nil
	if id > c.maxStreamID {
		if id%2 == 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.maxStreamID = id
		st := &srvStream{c: c, id: id}
		st.md = st.mdArr[:0]
		if f.endHeaders && c.hdrCache.apply(f.fragment, st) {
			c.hdrID = 0
			c.onRequestHeaders(st)
			return nil
		}
		c.hdrStream = st
	}
	return c.onHeaderFragment(f.fragment, f.endHeaders)
}

func (c *srvConn) onHeaderFragment(frag []byte, end bool) error {
	if c.hdrID == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.hdrFrags += len(frag)
	if c.hdrFrags > srvMaxHeaderList {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	// Any block decoded may change the table the cached one refers to.
	c.hdrCache.valid = false
	if _, err := c.hdec.Write(frag); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	if !end {
		return nil
	}
	if err := c.hdec.Close(); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	id, st := c.hdrID, c.hdrStream
	c.hdrID, c.hdrStream = 0, nil
	if st != nil {
		if c.hdrWhole && !c.hdrTooBig && !st.badTO {
			c.hdrCache.save(frag, st, c.hdrTimeout, c.s.handlers[st.path])
		}
		c.onRequestHeaders(st)
		return nil
	}
	// Trailers from the client: they may only end a stream.
	c.wmu.Lock()
	st = c.streams[id]
	c.wmu.Unlock()
	switch {
	case st == nil || st.ended:
		// A stream we already answered or reset: ignore (RFC 9113 5.1).
	case !c.hdrEnd:
		c.resetStream(id, http2.ErrCodeProtocol)
	default:
		c.onRequestEnd(st)
	}
	return nil
}

// onHeaderField records one decoded request header. Reserved gRPC headers
// are interpreted; the others become the call's incoming metadata.
func (c *srvConn) onHeaderField(f hpack.HeaderField) {
	st := c.hdrStream
	if st == nil {
		return
	}
	c.hdrSize += len(f.Name) + len(f.Value) + 32
	if c.hdrSize > srvMaxHeaderList {
		c.hdrTooBig = true
		return
	}
	switch f.Name {
	case ":path":
		st.path = f.Value
	case ":method":
		st.post = f.Value == "POST"
	case ":scheme", "te", "grpc-encoding", "grpc-accept-encoding":
	case "content-type":
		st.ctOK = isGRPCContentType(f.Value)
		st.md = append(st.md, f)
	case "grpc-timeout":
		d, ok := srvParseTimeout(f.Value)
		if !ok {
			st.badTO = true
			return
		}
		c.hdrTimeout = d
		st.deadline = time.Now().Add(d)
	default:
		if strings.HasPrefix(f.Name, ":") && f.Name != ":authority" {
			return
		}
		st.md = append(st.md, f)
	}
}

// onRequestHeaders validates a new call's headers and accepts it, or
// answers it at once.
func (c *srvConn) onRequestHeaders(st *srvStream) {
	st.ended = c.hdrEnd
	var (
		httpStatus = "200"
		code       codes.Code
		msg        string
	)
	switch {
	case c.hdrTooBig:
		code, msg = codes.Internal, "grpcwire: header list too large"
	case !st.post:
		httpStatus, code, msg = "405", codes.Internal, "grpcwire: method must be POST"
	case !st.ctOK:
		httpStatus, code, msg = "415", codes.Internal, "grpcwire: content-type is not application/grpc"
	case st.badTO:
		code, msg = codes.Internal, "grpcwire: malformed grpc-timeout"
	default:
		if st.handler == nil { // else found by the header cache
			st.handler = c.s.handlers[st.path]
		}
		if st.handler == nil {
			code, msg = codes.Unimplemented, "grpcwire: unknown method "+st.path
		}
	}

	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.draining || c.halfClosed || c.dead.Load() {
		// Above our GOAWAY's last stream: the client may retry it elsewhere.
		c.wbuf = srvAppendRSTStream(c.wbuf, st.id, http2.ErrCodeRefusedStream)
		return
	}
	c.lastAccepted = st.id
	if code != codes.OK {
		c.appendStatusLocked(st, httpStatus, code, msg, "")
		if !st.ended {
			// Tell the client to stop sending the request.
			c.wbuf = srvAppendRSTStream(c.wbuf, st.id, http2.ErrCodeNo)
		}
		return
	}
	st.sendWindow = c.peerWindow
	st.buf = srvGetBuf()
	c.streams[st.id] = st
	c.active++
	if st.ended {
		// END_STREAM on the HEADERS: the request has no message.
		c.appendStatusLocked(st, "200", codes.Internal, "grpcwire: request has no message", "")
		c.closeStreamLocked(st)
	}
}

func (c *srvConn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	c.wmu.Lock()
	// Flow control counts the whole frame, padding included; the
	// connection window is returned as soon as the bytes are read, the
	// stream window only matters for requests larger than srvWindow/2.
	c.recvUnacked += f.Length
	if c.recvUnacked >= srvWindow/2 {
		c.wbuf = srvAppendWindowUpdate(c.wbuf, 0, c.recvUnacked)
		c.recvUnacked = 0
	}
	st := c.streams[id]
	c.wmu.Unlock()
	if st == nil {
		if id > c.maxStreamID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil // answered early or reset: drop
	}
	if st.ended {
		c.resetStream(id, http2.ErrCodeStreamClosed)
		return nil
	}
	end := f.StreamEnded()
	if !end {
		st.recvUnacked += f.Length
		if st.recvUnacked >= srvWindow/2 {
			c.wmu.Lock()
			c.wbuf = srvAppendWindowUpdate(c.wbuf, id, st.recvUnacked)
			c.wmu.Unlock()
			st.recvUnacked = 0
		}
	}

	b := append(st.buf.b, f.Data()...)
	st.buf.b = b
	if st.want == 0 && len(b) >= 5 {
		n := int(binary.BigEndian.Uint32(b[1:5]))
		switch {
		case b[0] != 0:
			c.failRequest(st, codes.Unimplemented, "grpcwire: compressed requests are not supported")
			return nil
		case n > c.s.maxRecv:
			c.failRequest(st, codes.ResourceExhausted, "grpcwire: received message larger than max ("+strconv.Itoa(n)+" vs. "+strconv.Itoa(c.s.maxRecv)+")")
			return nil
		}
		st.want = 5 + n
		if cap(b) < st.want {
			// Size the buffer once instead of growing it frame by frame.
			nb := make([]byte, len(b), st.want)
			copy(nb, b)
			st.buf.b = nb
		}
	}
	if st.want != 0 && len(st.buf.b) > st.want {
		c.failRequest(st, codes.Internal, "grpcwire: more than one request message in a unary call")
		return nil
	}
	if end {
		c.onRequestEnd(st)
	}
	return nil
}

// onRequestEnd runs the handler once the client has sent the whole request.
func (c *srvConn) onRequestEnd(st *srvStream) {
	st.ended = true
	if st.want == 0 || len(st.buf.b) != st.want {
		c.failRequest(st, codes.Internal, "grpcwire: request message missing or truncated")
		return
	}
	st.conn = c.ctx
	st.running = true
	go c.runStream(st)
}

// failRequest answers an accepted stream with an error before its handler
// runs.
func (c *srvConn) failRequest(st *srvStream, code codes.Code, msg string) {
	c.wmu.Lock()
	if !st.done {
		c.appendStatusLocked(st, "200", code, msg, "")
		if !st.ended {
			c.wbuf = srvAppendRSTStream(c.wbuf, st.id, http2.ErrCodeNo)
		}
		c.closeStreamLocked(st)
	}
	c.wmu.Unlock()
	c.releaseRequest(st)
}

// releaseRequest recycles the request buffer of a stream whose handler
// never started.
func (c *srvConn) releaseRequest(st *srvStream) {
	if !st.running && st.buf != nil {
		srvPutBuf(st.buf)
		st.buf = nil
	}
}

// resetStream sends RST_STREAM for a stream error and forgets the stream.
func (c *srvConn) resetStream(id uint32, code http2.ErrCode) {
	c.wmu.Lock()
	st := c.streams[id]
	if st != nil {
		c.resetStreamLocked(st, code)
	} else {
		c.wbuf = srvAppendRSTStream(c.wbuf, id, code)
	}
	c.wmu.Unlock()
	if st != nil {
		c.endStreamWork(st)
	}
}

func (c *srvConn) resetStreamLocked(st *srvStream, code http2.ErrCode) {
	c.wbuf = srvAppendRSTStream(c.wbuf, st.id, code)
	c.closeStreamLocked(st)
	c.wcond.Broadcast()
}

// endStream handles the client's RST_STREAM: the call's context is
// cancelled and its answer, if any, is dropped.
func (c *srvConn) endStream(id uint32) {
	c.wmu.Lock()
	st := c.streams[id]
	if st != nil {
		c.closeStreamLocked(st)
		c.wcond.Broadcast()
	}
	c.wmu.Unlock()
	if st != nil {
		c.endStreamWork(st)
	}
}

// endStreamWork cancels a reset stream's handler, or recycles its request
// buffer if the handler never started. Serve goroutine only.
func (c *srvConn) endStreamWork(st *srvStream) {
	st.ended = true
	if st.running {
		st.end(context.Canceled)
		return
	}
	c.releaseRequest(st)
}

func (c *srvConn) closeStreamLocked(st *srvStream) {
	if st.done {
		return
	}
	st.done = true
	delete(c.streams, st.id)
	c.active--
	if c.active == 0 && c.closeIdle {
		c.halfCloseLocked()
	}
}

func (c *srvConn) runStream(st *srvStream) {
	resp, err := st.handler(st, st.buf.b[5:])
	srvPutBuf(st.buf)
	st.buf = nil
	c.respond(st, resp, err)
	st.end(context.Canceled)
}

// respond writes a handler's answer: HEADERS, DATA and trailers in one
// write when the client's windows allow, else as the windows open.
func (c *srvConn) respond(st *srvStream, resp []byte, herr error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if st.done || c.dead.Load() {
		return
	}
	if herr != nil {
		s, ok := status.FromError(herr)
		if !ok {
			s = status.FromContextError(herr)
		}
		var details string
		if p := s.Proto(); len(p.GetDetails()) > 0 {
			if b, err := proto.Marshal(p); err == nil {
				details = base64.RawStdEncoding.EncodeToString(b)
			}
		}
		c.appendStatusLocked(st, "200", s.Code(), s.Message(), details)
	} else {
		blk := c.appendOKHeadersLocked(c.startBlockLocked())
		for _, f := range st.outHeader {
			blk = srvAppendField(blk, f.Name, f.Value)
		}
		c.appendHeaderBlockLocked(st.id, blk, false)
		if !c.appendMessageLocked(st, resp) {
			return
		}
		c.appendHeaderBlockLocked(st.id, c.appendOKTrailersLocked(c.startBlockLocked()), true)
	}
	c.flushLocked()
	c.closeStreamLocked(st)
	if cap(c.wbuf) > srvKeepBuf {
		c.wbuf = nil
	}
}

// appendMessageLocked appends resp, gRPC prefix included, as DATA frames
// within the client's windows, writing and waiting for WINDOW_UPDATEs when
// they are exhausted. It reports false when the stream was reset or the
// connection died meanwhile.
func (c *srvConn) appendMessageLocked(st *srvStream, resp []byte) bool {
	var prefix [5]byte
	binary.BigEndian.PutUint32(prefix[1:], uint32(len(resp)))
	total, off := 5+len(resp), 0
	for off < total {
		avail := min(c.sendWindow, st.sendWindow)
		if avail <= 0 {
			c.flushLocked()
			c.wcond.Wait()
			if st.done || c.dead.Load() || c.halfClosed {
				return false
			}
			continue
		}
		n := int(min(avail, int64(total-off), srvWriteChunk))
		c.sendWindow -= int64(n)
		st.sendWindow -= int64(n)
		for n > 0 {
			m := min(n, c.peerMaxFrame)
			c.wbuf = srvAppendFrameHeader(c.wbuf, m, http2.FrameData, 0, st.id)
			c.wbuf = srvAppendRange(c.wbuf, &prefix, resp, off, m)
			off += m
			n -= m
		}
		if len(c.wbuf) >= srvWriteChunk {
			c.flushLocked()
			if c.dead.Load() {
				return false
			}
		}
	}
	return true
}

// appendStatusLocked appends a trailers-only answer (an error before any
// message): :status, content-type, grpc-status and grpc-message in one
// header block that ends the stream.
func (c *srvConn) appendStatusLocked(st *srvStream, httpStatus string, code codes.Code, msg, details string) {
	blk := c.startBlockLocked()
	if httpStatus == "200" {
		blk = c.appendOKHeadersLocked(blk)
	} else {
		blk = srvAppendField(blk, ":status", httpStatus)
		blk = srvAppendField(blk, "content-type", "application/grpc")
	}
	if st.running {
		for _, f := range st.outHeader {
			blk = srvAppendField(blk, f.Name, f.Value)
		}
	}
	blk = srvAppendField(blk, "grpc-status", srvCodeString(code))
	if msg != "" {
		blk = srvAppendField(blk, "grpc-message", srvEncodeMessage(msg))
	}
	if details != "" {
		blk = srvAppendField(blk, "grpc-status-details-bin", details)
	}
	c.appendHeaderBlockLocked(st.id, blk, true)
}

// startBlockLocked returns the (reused) buffer for the next header block,
// starting with the HPACK table size update owed to a client that shrank
// our table.
func (c *srvConn) startBlockLocked() []byte {
	blk := c.hblock[:0]
	if c.tableUpdate {
		// We never index, so a table of size 0 suits us and needs no
		// further updates whatever the client sets later.
		blk = append(blk, 0x20)
		c.tableUpdate = false
	}
	return blk
}

// appendHeaderBlockLocked appends a header block as HEADERS plus as many
// CONTINUATION frames as the client's frame size needs.
func (c *srvConn) appendHeaderBlockLocked(id uint32, block []byte, endStream bool) {
	c.hblock = block[:0]
	typ, flags := http2.FrameHeaders, http2.Flags(0)
	if endStream {
		flags = http2.FlagHeadersEndStream
	}
	for {
		n := min(len(block), c.peerMaxFrame)
		f := flags
		if n == len(block) {
			f |= http2.FlagHeadersEndHeaders
		}
		c.wbuf = srvAppendFrameHeader(c.wbuf, n, typ, f, id)
		c.wbuf = append(c.wbuf, block[:n]...)
		block = block[n:]
		if len(block) == 0 {
			return
		}
		typ, flags = http2.FrameContinuation, 0
	}
}

// flushLocked writes the pending frames in one write.
func (c *srvConn) flushLocked() {
	if len(c.wbuf) == 0 {
		return
	}
	if c.halfClosed || c.dead.Load() {
		c.wbuf = c.wbuf[:0]
		return
	}
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		c.kill()
		c.wcond.Broadcast()
	}
}

// goAway starts a graceful shutdown of the connection: GOAWAY now, close
// when the accepted calls are answered.
func (c *srvConn) goAway() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.ready {
		// Still in the handshake: there is nothing to drain.
		c.kill()
		return
	}
	if c.draining || c.dead.Load() {
		return
	}
	c.draining = true
	c.closeIdle = true
	c.wbuf = srvAppendGoAway(c.wbuf, c.lastAccepted, http2.ErrCodeNo)
	if c.active == 0 {
		c.halfCloseLocked()
		return
	}
	c.flushLocked()
}

// halfCloseLocked flushes and shuts our side of an idle connection, then
// gives the client srvLinger to close its side: closing outright while the
// client's last frames are unread would reset the connection and could
// destroy answers still in flight.
func (c *srvConn) halfCloseLocked() {
	if c.halfClosed || c.dead.Load() {
		return
	}
	c.flushLocked()
	c.halfClosed = true
	c.wcond.Broadcast()
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || c.nc.SetReadDeadline(time.Now().Add(srvLinger)) != nil {
		c.kill()
	}
}

// IncomingMetadata returns the request headers of the call whose handler
// received ctx (custom metadata plus content-type, user-agent and
// :authority, as grpc-go's metadata.FromIncomingContext), or nil outside a
// handler. Binary ("-bin") values are decoded. It builds a new map per call,
// so the hot path pays nothing when no handler asks.
func IncomingMetadata(ctx context.Context) metadata.MD {
	st, _ := ctx.Value(srvStreamKey{}).(*srvStream)
	if st == nil {
		return nil
	}
	md := make(metadata.MD, len(st.md))
	for _, f := range st.md {
		v := f.Value
		if strings.HasSuffix(f.Name, "-bin") {
			if b, err := srvDecodeBin(v); err == nil {
				v = string(b)
			}
		}
		md[f.Name] = append(md[f.Name], v)
	}
	return md
}

// SetHeader adds a response header to the call whose handler received ctx.
// It must be called from the handler's goroutine before the handler
// returns. Keys are lower-cased; "-bin" values are base64-encoded as gRPC
// requires.
func SetHeader(ctx context.Context, key, value string) error {
	st, _ := ctx.Value(srvStreamKey{}).(*srvStream)
	if st == nil {
		return errors.New("grpcwire: SetHeader outside a handler")
	}
	key = strings.ToLower(key)
	if strings.HasPrefix(key, ":") || strings.HasPrefix(key, "grpc-") || key == "content-type" {
		return fmt.Errorf("grpcwire: SetHeader: reserved header %q", key)
	}
	if strings.HasSuffix(key, "-bin") {
		value = base64.RawStdEncoding.EncodeToString([]byte(value))
	}
	st.outHeader = append(st.outHeader, hpack.HeaderField{Name: key, Value: value})
	return nil
}

// srvBuf holds a request buffer in srvBufPool; the pointer travels with the
// slice so that recycling it allocates nothing.
type srvBuf struct{ b []byte }

var srvBufPool = sync.Pool{New: func() any { return new(srvBuf) }}

func srvGetBuf() *srvBuf { return srvBufPool.Get().(*srvBuf) }

func srvPutBuf(b *srvBuf) {
	if cap(b.b) > srvKeepBuf {
		b.b = nil
	}
	b.b = b.b[:0]
	srvBufPool.Put(b)
}

// Answers use the HPACK dynamic table for exactly two fields, the ones in
// every answer: content-type (inserted by the first answer) and grpc-status
// 0 (by the first success). Nothing else is ever inserted, so their indices
// are fixed (62 for the newest entry, 63 before it) and the blocks are
// constants: a few bytes that the client's decoder resolves from its table
// without allocating. Every other field is a literal that is never indexed.
// A client that shrinks the table gets size 0 and literals from then on.
var (
	srvBlockOKFirst    = srvAppendIndexedLiteral([]byte{0x88}, "content-type", "application/grpc") // 0x88: static entry ":status: 200"
	srvBlockOKLiteral  = srvAppendField([]byte{0x88}, "content-type", "application/grpc")
	srvTrailersOKFirst = srvAppendIndexedLiteral(nil, "grpc-status", "0")
	srvTrailersLiteral = srvAppendField(nil, "grpc-status", "0")
)

// The newest dynamic table entry's index (RFC 7541 2.3.3), and the prefix
// of an indexed field (6.1). The two entries take 104 of the table's 4096
// bytes, so neither is ever evicted.
const (
	srvIndexNewest  = 62
	srvIndexedField = 0x80
)

// srvAppendIndexedLiteral appends a literal field with incremental indexing
// and a literal name (RFC 7541 6.2.1).
func srvAppendIndexedLiteral(b []byte, name, value string) []byte {
	return srvAppendLiteral(b, 0x40, name, value)
}

// appendOKHeadersLocked appends ":status: 200" and content-type.
func (c *srvConn) appendOKHeadersLocked(blk []byte) []byte {
	switch {
	case c.tableShrunk:
		return append(blk, srvBlockOKLiteral...)
	case !c.ctIndexed:
		c.ctIndexed = true
		return append(blk, srvBlockOKFirst...)
	case c.okIndexed:
		return append(blk, 0x88, srvIndexedField|(srvIndexNewest+1))
	default:
		return append(blk, 0x88, srvIndexedField|srvIndexNewest)
	}
}

// appendOKTrailersLocked appends "grpc-status: 0".
func (c *srvConn) appendOKTrailersLocked(blk []byte) []byte {
	switch {
	case c.tableShrunk:
		return append(blk, srvTrailersLiteral...)
	case !c.okIndexed:
		c.okIndexed = true
		return append(blk, srvTrailersOKFirst...)
	default:
		return append(blk, srvIndexedField|srvIndexNewest)
	}
}

// srvAppendField appends a literal header field without indexing, with a
// literal name (RFC 7541 6.2.2).
func srvAppendField(b []byte, name, value string) []byte {
	return srvAppendLiteral(b, 0, name, value)
}

// srvAppendLiteral appends a literal field with a literal name; first is the
// representation's first byte (0x40 indexed, 0 not indexed).
func srvAppendLiteral(b []byte, first byte, name, value string) []byte {
	b = append(b, first)
	b = srvAppendHpackInt(b, 7, uint64(len(name)))
	b = append(b, name...)
	b = srvAppendHpackInt(b, 7, uint64(len(value)))
	return append(b, value...)
}

// srvAppendHpackInt appends v as an HPACK integer with an n-bit prefix
// (RFC 7541 5.1) and a clear Huffman bit.
func srvAppendHpackInt(b []byte, n uint, v uint64) []byte {
	limit := uint64(1)<<n - 1
	if v < limit {
		return append(b, byte(v))
	}
	b = append(b, byte(limit))
	for v -= limit; v >= 0x80; v >>= 7 {
		b = append(b, byte(v)|0x80)
	}
	return append(b, byte(v))
}

func srvAppendFrameHeader(b []byte, length int, typ http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

func srvAppendWindowUpdate(b []byte, id, incr uint32) []byte {
	b = srvAppendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, id)
	return binary.BigEndian.AppendUint32(b, incr&0x7fffffff)
}

func srvAppendRSTStream(b []byte, id uint32, code http2.ErrCode) []byte {
	b = srvAppendFrameHeader(b, 4, http2.FrameRSTStream, 0, id)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

func srvAppendGoAway(b []byte, lastID uint32, code http2.ErrCode) []byte {
	b = srvAppendFrameHeader(b, 8, http2.FrameGoAway, 0, 0)
	b = binary.BigEndian.AppendUint32(b, lastID&0x7fffffff)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

// srvAppendRange appends bytes [off, off+n) of the gRPC message prefix
// followed by msg, so the prefix never needs copying in front of msg.
func srvAppendRange(b []byte, prefix *[5]byte, msg []byte, off, n int) []byte {
	if off < 5 {
		k := min(5-off, n)
		b = append(b, prefix[off:off+k]...)
		off += k
		n -= k
	}
	return append(b, msg[off-5:off-5+n]...)
}

// srvParseTimeout parses a grpc-timeout value: at most 8 digits and a unit
// (Hours, Minutes, Seconds, milliseconds, microseconds, nanoseconds).
// Durations too large for time.Duration are clamped.
func srvParseTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	var n int64
	for _, ch := range []byte(v[:len(v)-1]) {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if n > math.MaxInt64/int64(unit) {
		return math.MaxInt64, true
	}
	return time.Duration(n) * unit, true
}

var srvCodeStrings = func() []string {
	s := make([]string, 17)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

func srvCodeString(c codes.Code) string {
	if int(c) < len(srvCodeStrings) {
		return srvCodeStrings[c]
	}
	return strconv.FormatUint(uint64(c), 10)
}

// srvEncodeMessage percent-encodes a grpc-message value as the gRPC spec
// requires: bytes outside printable ASCII, and '%' itself.
func srvEncodeMessage(msg string) string {
	i := 0
	for i < len(msg) && msg[i] >= 0x20 && msg[i] <= 0x7e && msg[i] != '%' {
		i++
	}
	if i == len(msg) {
		return msg
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, i, len(msg)+16)
	copy(b, msg[:i])
	for ; i < len(msg); i++ {
		ch := msg[i]
		if ch >= 0x20 && ch <= 0x7e && ch != '%' {
			b = append(b, ch)
			continue
		}
		b = append(b, '%', hex[ch>>4], hex[ch&0xf])
	}
	return string(b)
}

// srvDecodeBin decodes a "-bin" header value, which senders may pad or not.
func srvDecodeBin(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}
