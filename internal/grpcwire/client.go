package grpcwire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DialFunc opens the connection a ClientConn speaks HTTP/2 over, with any
// TLS handshake already done (ALPN "h2"). ctx bounds the dial.
type DialFunc func(ctx context.Context) (net.Conn, error)

// ClientConnOptions configures a ClientConn.
type ClientConnOptions struct {
	// Authority is the :authority of every call: host:port, or the TLS
	// server name the server's certificate is issued for.
	Authority string

	// Dial opens the connection. Required.
	Dial DialFunc

	// MaxRecvMsgSize caps an answer's message. Default 4 MiB, gRPC's.
	MaxRecvMsgSize int

	// StaleAfter: a connection idle for longer is checked for a GOAWAY or a
	// close that arrived meanwhile before a call is sent on it, so a server
	// that went away costs a reconnect instead of the call. Default 1s.
	StaleAfter time.Duration

	// TLS marks the scheme https; the handshake itself is Dial's.
	TLS bool

	// UserAgent is sent on every call. Default "crunch-node-grpcwire".
	UserAgent string
}

// Request is one unary call.
type Request struct {
	// Method is the full method name, "/package.Service/Method".
	Method string
	// Message is the marshalled request message.
	Message []byte
	// Metadata are extra request headers, lower-case names.
	Metadata []hpack.HeaderField
	// Timeout is the call's deadline from now, sent as grpc-timeout; the
	// earlier of it and ctx's deadline applies. Zero: ctx's alone.
	Timeout time.Duration
}

// Answer is a successful call's result.
type Answer struct {
	// Message is the marshalled answer message; the caller owns it.
	Message []byte
	// Header is the answer's header metadata (no pseudo-headers).
	Header []hpack.HeaderField
	// TLS is the state of the connection the call went over; nil without
	// TLS.
	TLS *tls.ConnectionState
}

// HeaderValue returns the first value of the header named key.
func (a *Answer) HeaderValue(key string) (string, bool) {
	for _, f := range a.Header {
		if f.Name == key {
			return f.Value, true
		}
	}
	return "", false
}

// ClientConn is a gRPC client for one server that makes one unary call at a
// time over one HTTP/2 connection. The caller's goroutine writes the request
// and reads the answer itself: no writer or reader goroutine hands frames
// over, which is most of what a small call costs in grpc-go. Concurrent
// calls wait for each other. The connection is dialled on the first call and
// again after it breaks; a call that times out or is cancelled closes it
// (its reader may have stopped in the middle of a frame).
type ClientConn struct {
	opts ClientConnOptions

	callMu sync.Mutex // held for a whole call
	t      *transport // nil until dialled and after breaking; guarded by callMu

	closeMu sync.Mutex // guards closed and live, for Close during a call
	closed  bool
	live    net.Conn
}

// NewClientConn returns a client; it dials on the first call.
func NewClientConn(opts ClientConnOptions) *ClientConn {
	if opts.MaxRecvMsgSize <= 0 {
		opts.MaxRecvMsgSize = 4 << 20
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "crunch-node-grpcwire"
	}
	return &ClientConn{opts: opts}
}

// ErrClientClosed is the error of calls on a closed ClientConn.
var ErrClientClosed = status.Error(codes.Canceled, "grpcwire: client connection closed")

// Close closes the connection, failing a call in flight. Calls after Close
// fail with ErrClientClosed.
func (c *ClientConn) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	c.closed = true
	if c.live != nil {
		return c.live.Close()
	}
	return nil
}

// Connect dials if there is no usable connection, so a caller can tell a
// model it cannot reach from one that does not answer.
func (c *ClientConn) Connect(ctx context.Context) error {
	c.callMu.Lock()
	defer c.callMu.Unlock()
	_, err := c.transport(ctx, time.Time{})
	return err
}

// Invoke makes one call. Errors are gRPC status errors (status.Code works on
// them): the server's grpc-status, or DeadlineExceeded, Canceled,
// Unavailable (cannot connect, connection lost) and Internal (protocol
// violations) from the client's side.
func (c *ClientConn) Invoke(ctx context.Context, req *Request) (*Answer, error) {
	deadline, hasDeadline := ctx.Deadline()
	ownTimeout := false // the deadline is req.Timeout from now
	if req.Timeout > 0 {
		if d := time.Now().Add(req.Timeout); !hasDeadline || d.Before(deadline) {
			deadline, hasDeadline, ownTimeout = d, true, true
		}
	}
	c.callMu.Lock()
	defer c.callMu.Unlock()
	for attempt := 0; ; attempt++ {
		var dialDeadline time.Time
		if hasDeadline {
			dialDeadline = deadline
		}
		t, err := c.transport(ctx, dialDeadline)
		if err != nil {
			return nil, err
		}
		answer, err := t.call(ctx, req, deadline, hasDeadline, ownTimeout, c.opts.MaxRecvMsgSize)
		if t.broken || t.goAway {
			c.drop(t)
		}
		// A stream the server provably never processed (GOAWAY below it,
		// REFUSED_STREAM) goes once more on a fresh connection, as grpc-go's
		// transparent retry does.
		unprocessed := asUnprocessed(err)
		if unprocessed != nil && attempt == 0 {
			c.drop(t)
			continue
		}
		if unprocessed != nil {
			err = unprocessed.err
		}
		return answer, err
	}
}

// transport returns the live connection, dialling one if needed, within
// ctx and deadline (zero: ctx's alone), so a call's own timeout bounds a
// dial to a host that drops packets. Called with callMu held.
func (c *ClientConn) transport(ctx context.Context, deadline time.Time) (*transport, error) {
	c.closeMu.Lock()
	closed := c.closed
	c.closeMu.Unlock()
	if closed {
		return nil, ErrClientClosed
	}
	if c.t != nil && time.Since(c.t.lastUsed) > c.opts.StaleAfter {
		c.t.checkStale()
		if c.t.broken || c.t.goAway {
			c.drop(c.t)
		}
	}
	if c.t != nil {
		return c.t, nil
	}
	dialCtx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		dialCtx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	nc, err := c.opts.Dial(dialCtx)
	if err != nil {
		return nil, connectError(dialCtx, err)
	}
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		_ = nc.Close()
		return nil, ErrClientClosed
	}
	c.live = nc
	c.closeMu.Unlock()
	t, err := newTransport(nc, c.opts)
	if err != nil {
		c.drop(t)
		return nil, connectError(ctx, err)
	}
	c.t = t
	return t, nil
}

func (c *ClientConn) drop(t *transport) {
	_ = t.nc.Close()
	c.closeMu.Lock()
	if c.live == t.nc {
		c.live = nil
	}
	c.closeMu.Unlock()
	if c.t == t {
		c.t = nil
	}
}

func connectError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.Error(codeOf(ctxErr), "connecting: "+err.Error())
	}
	return status.Error(codes.Unavailable, "connection error: "+err.Error())
}

func codeOf(ctxErr error) codes.Code {
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		return codes.DeadlineExceeded
	}
	return codes.Canceled
}

// unprocessedError wraps the error of a stream the server did not process.
type unprocessedError struct{ err error }

func (e *unprocessedError) Error() string { return e.err.Error() }

// asUnprocessed returns err's unprocessedError, if any. The variable
// errors.As fills escapes to the heap, so a call that succeeded does not
// declare it.
func asUnprocessed(err error) *unprocessedError {
	if err == nil {
		return nil
	}
	var unprocessed *unprocessedError
	if !errors.As(err, &unprocessed) {
		return nil
	}
	return unprocessed
}

// maxHeaderListSize bounds an answer's headers or trailers.
const maxHeaderListSize = 1 << 20

// Flow-control windows this client grants. Answers are at most
// MaxRecvMsgSize, so a stream's window never needs replenishing.
const (
	defaultWindow = 65535
	minRecvWindow = 8 << 20
	maxWindow     = 1<<31 - 1
)

// transport is one HTTP/2 connection; only the goroutine holding the
// ClientConn's callMu touches it.
type transport struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	fr       *http2.Framer
	frames   frameReader
	henc     *hpack.Encoder
	hbuf     []byte       // hpack output: the last request's header block
	block    requestBlock // what hbuf encodes
	hw       sliceWriter
	tls      *tls.ConnectionState
	opts     *ClientConnOptions
	lastUsed time.Time
	deadline time.Time

	nextStream  uint32
	recvWindow  int32 // the window granted per stream and to the connection
	recvUnacked int32 // connection-level bytes received and not yet granted back
	sendConn    int64 // the server's connection window for our DATA
	peerInitWin int64 // the server's initial stream window
	peerMaxFrm  int

	broken     bool // the connection cannot carry another call
	goAway     bool // the server sent GOAWAY: finish and reconnect
	goAwayLast uint32

	payload []byte // the request's length-prefixed message
	msg     []byte // the answer's DATA, prefix included
	maxMsg  int

	// The header block being received: HEADERS plus CONTINUATIONs.
	hdec         *hpack.Decoder
	hblock       []byte
	hblockID     uint32
	hblockEnd    bool // the HEADERS frame ended its stream
	hfields      hpackFields
	answerBlocks answerBlockCache
	timeoutFor   time.Duration // the Timeout whose encoding is timeoutStr
	timeoutStr   string

	// Per-call state.
	callDeadline time.Time // zero: none
	stream       uint32
	sendStream   int64
	gotHeaders   bool
	header       []hpack.HeaderField
	done         bool
	grpcStatus   string
	grpcMessage  string
	callErr      error
}

// sliceWriter lets the hpack encoder append into a reused slice.
type sliceWriter struct{ b *[]byte }

func (w sliceWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}

func newTransport(nc net.Conn, opts ClientConnOptions) (*transport, error) {
	recvWindow := int32(minRecvWindow)
	if need := int64(opts.MaxRecvMsgSize) + 1<<16; need > int64(recvWindow) {
		recvWindow = int32(min(need, maxWindow))
	}
	t := &transport{
		nc:          nc,
		br:          bufio.NewReaderSize(nc, 32<<10),
		bw:          bufio.NewWriterSize(nc, 32<<10),
		opts:        &opts,
		lastUsed:    time.Now(),
		nextStream:  1,
		recvWindow:  recvWindow,
		sendConn:    defaultWindow,
		peerInitWin: defaultWindow,
		peerMaxFrm:  16384,
	}
	t.hw = sliceWriter{&t.hbuf}
	t.henc = hpack.NewEncoder(t.hw)
	t.fr = http2.NewFramer(t.bw, t.br)
	t.fr.SetReuseFrames()
	t.frames = frameReader{fr: t.fr, r: t.br}
	// Header blocks are decoded here rather than by the Framer's
	// MetaHeadersFrame, which allocates a frame, a field slice and every
	// string; fields the server indexed come from the table for free.
	t.hdec = hpack.NewDecoder(4096, t.hfields.add)
	t.hdec.SetMaxStringLength(maxHeaderListSize)
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "h2" {
			t.broken = true
			return t, fmt.Errorf("server negotiated ALPN %q, not h2", st.NegotiatedProtocol)
		}
		t.tls = &st
	}
	// The preface, our settings and the connection window go out with the
	// first request: a client need not wait for the server's settings.
	if _, err := t.bw.WriteString(http2.ClientPreface); err != nil {
		return t, err
	}
	err := errors.Join(
		t.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(recvWindow)},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderListSize},
		),
		t.fr.WriteWindowUpdate(0, uint32(recvWindow-defaultWindow)),
	)
	if err != nil {
		t.broken = true
		return t, err
	}
	return t, nil
}

// checkStale reads what the server sent while the connection sat idle (a
// GOAWAY, a close, a PING) before a call goes out on it.
func (t *transport) checkStale() {
	for t.br.Buffered() > 0 || pending(t.nc) {
		// Something is there, so this read does not wait for long; the
		// bound is for a TLS record that carries no frame.
		t.deadline = time.Now().Add(staleReadTimeout)
		if err := t.nc.SetReadDeadline(t.deadline); err != nil {
			t.broken = true
			return
		}
		if err := t.readFrame(); err != nil {
			t.broken = true
			return
		}
		if t.goAway {
			return
		}
	}
}

// staleReadTimeout bounds reading an idle connection's pending frames.
const staleReadTimeout = time.Second

func (t *transport) call(ctx context.Context, req *Request, deadline time.Time, hasDeadline, ownTimeout bool, maxRecv int) (*Answer, error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	var timeout hpack.HeaderField
	if hasDeadline {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, status.Error(codes.DeadlineExceeded, "context deadline exceeded")
		}
		timeout = t.timeoutField(req.Timeout, remaining, ownTimeout)
	}
	// The conn's deadline is the call's; cancelling ctx moves it to now.
	if !deadline.Equal(t.deadline) {
		if err := t.nc.SetDeadline(deadline); err != nil {
			t.broken = true
			return nil, status.Error(codes.Unavailable, "connection error: "+err.Error())
		}
		t.deadline = deadline
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = t.nc.SetDeadline(time.Unix(1, 0)) })
		defer func() {
			if !stop() {
				t.broken = true
			}
		}()
	}

	t.callDeadline = time.Time{}
	if hasDeadline {
		t.callDeadline = deadline
	}
	t.stream, t.nextStream = t.nextStream, t.nextStream+2
	if t.nextStream > 1<<30 {
		t.goAway = true // retire the connection after this call
	}
	t.sendStream = t.peerInitWin
	t.gotHeaders, t.header, t.done = false, nil, false
	t.grpcStatus, t.grpcMessage, t.callErr = "", "", nil
	t.msg = t.msg[:0]
	t.maxMsg = maxRecv

	err := t.writeRequest(req, timeout)
	for err == nil && !t.done {
		err = t.readFrame()
	}
	t.lastUsed = time.Now()
	if err != nil {
		t.broken = true
		return nil, t.transportError(ctx, err)
	}
	if t.callErr != nil {
		return nil, t.callErr
	}
	return t.answer()
}

// timeoutField is the call's grpc-timeout. A model's calls all carry the
// same Timeout, so its encoding is kept, and sent indexed: the server's
// decoder then finds it in its table instead of parsing a new string every
// call. A deadline from the caller's context changes every call and is never
// indexed.
func (t *transport) timeoutField(own, remaining time.Duration, ownTimeout bool) hpack.HeaderField {
	if !ownTimeout {
		return hpack.HeaderField{Name: "grpc-timeout", Value: encodeTimeout(remaining), Sensitive: true}
	}
	if own != t.timeoutFor || t.timeoutStr == "" {
		t.timeoutFor, t.timeoutStr = own, encodeTimeout(own)
	}
	return hpack.HeaderField{Name: "grpc-timeout", Value: t.timeoutStr}
}

// writeRequest sends HEADERS and the DATA of the request, waiting for window
// updates when the server's flow control asks for it.
func (t *transport) writeRequest(req *Request, timeout hpack.HeaderField) error {
	block, err := t.headerBlock(req, timeout)
	if err != nil {
		return err
	}
	first := block[:min(len(block), t.peerMaxFrm)]
	block = block[len(first):]
	if err := t.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: t.stream, BlockFragment: first, EndHeaders: len(block) == 0}); err != nil {
		return err
	}
	for len(block) > 0 {
		frag := block[:min(len(block), t.peerMaxFrm)]
		block = block[len(frag):]
		if err := t.fr.WriteContinuation(t.stream, len(block) == 0, frag); err != nil {
			return err
		}
	}

	t.payload = append(t.payload[:0], 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(t.payload[1:], uint32(len(req.Message)))
	t.payload = append(t.payload, req.Message...)
	data := t.payload
	for !t.done {
		n := min(int64(len(data)), t.sendConn, t.sendStream, int64(t.peerMaxFrm))
		if n <= 0 && len(data) > 0 {
			// Out of window: read until the server grants more (or
			// answers early).
			if err := t.readFrame(); err != nil {
				return err
			}
			continue
		}
		if err := t.fr.WriteData(t.stream, int(n) == len(data), data[:n]); err != nil {
			return err
		}
		t.sendConn -= n
		t.sendStream -= n
		data = data[n:]
		if len(data) == 0 {
			break
		}
	}
	if len(data) > 0 {
		// The server answered before taking the whole request: our side
		// of the stream never ended, so close it.
		if err := t.fr.WriteRSTStream(t.stream, http2.ErrCodeCancel); err != nil {
			return err
		}
	}
	return t.bw.Flush()
}

// headerBlock returns req's HPACK header block. A model is sent the same
// method, timeout and metadata call after call, and once the encoder has
// every field in its table the block is a few indexed references that leave
// the table as it is: then the last block is sent again instead of searching
// the table for each field (a few per cent of a call's CPU).
func (t *transport) headerBlock(req *Request, timeout hpack.HeaderField) ([]byte, error) {
	if t.block.reusable && req.Method == t.block.method && timeout == t.block.timeout && slices.Equal(req.Metadata, t.block.metadata) {
		return t.hbuf, nil
	}
	t.block.reusable = false
	t.hbuf = t.hbuf[:0]
	scheme := "http"
	if t.opts.TLS {
		scheme = "https"
	}
	fields := [...]hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: scheme},
		{Name: ":path", Value: req.Method},
		{Name: ":authority", Value: t.opts.Authority},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "user-agent", Value: t.opts.UserAgent},
		{Name: "te", Value: "trailers"},
	}
	for _, f := range fields {
		if err := t.henc.WriteField(f); err != nil {
			return nil, err
		}
	}
	if timeout.Name != "" {
		if err := t.henc.WriteField(timeout); err != nil {
			return nil, err
		}
	}
	for _, f := range req.Metadata {
		if err := t.henc.WriteField(f); err != nil {
			return nil, err
		}
	}
	t.block = requestBlock{method: req.Method, timeout: timeout, metadata: append(t.block.metadata[:0], req.Metadata...)}
	t.block.reusable = onlyIndexed(t.hbuf)
	return t.hbuf, nil
}

// requestBlock is what the last request's header block (in hbuf) encoded.
type requestBlock struct {
	reusable bool // the block only refers to the table: sending it again means the same
	method   string
	timeout  hpack.HeaderField
	metadata []hpack.HeaderField
}

// onlyIndexed reports whether an HPACK block holds nothing but indexed
// fields (RFC 7541 6.1), which leave the dynamic table as it was.
func onlyIndexed(b []byte) bool {
	for len(b) > 0 {
		if b[0]&0x80 == 0 {
			return false
		}
		n := 1
		if b[0]&0x7f == 0x7f {
			// The index goes on in bytes with the high bit set, up to one
			// without.
			for n < len(b) && b[n]&0x80 != 0 {
				n++
			}
			if n == len(b) {
				return false
			}
			n++
		}
		b = b[n:]
	}
	return true
}

// readFrame reads and handles one frame, flushing pending writes (settings
// acks, pings, window updates) first so the server never waits for them.
func (t *transport) readFrame() error {
	if t.bw.Buffered() > 0 {
		if err := t.bw.Flush(); err != nil {
			return err
		}
	}
	f, h, err := t.frames.next()
	if err != nil {
		return err
	}
	if t.hblockID != 0 {
		// Inside a header block only its CONTINUATIONs may come (RFC 9113
		// 6.10).
		cf, ok := f.(*http2.ContinuationFrame)
		if !ok || cf.StreamID != t.hblockID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return t.onHeaderFragment(cf.HeaderBlockFragment(), cf.HeadersEnded())
	}
	switch f := f.(type) {
	case nil: // HEADERS
		t.hblockID, t.hblockEnd, t.hblock = h.streamID, h.endStream, t.hblock[:0]
		return t.onHeaderFragment(h.fragment, h.endHeaders)
	case *http2.ContinuationFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	case *http2.DataFrame:
		if err := t.onData(f); err != nil {
			return err
		}
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if err := f.ForeachSetting(t.onSetting); err != nil {
			return err
		}
		return t.fr.WriteSettingsAck()
	case *http2.PingFrame:
		if !f.IsAck() {
			return t.fr.WritePing(true, f.Data)
		}
	case *http2.WindowUpdateFrame:
		switch f.StreamID {
		case 0:
			t.sendConn += int64(f.Increment)
		case t.stream:
			t.sendStream += int64(f.Increment)
		}
	case *http2.RSTStreamFrame:
		if f.StreamID == t.stream && !t.done {
			t.done = true
			t.callErr = rstError(f.ErrCode)
			// A server cancels a stream whose deadline passed; that is
			// the deadline's doing, as grpc-go also reports it.
			if f.ErrCode == http2.ErrCodeCancel && !t.callDeadline.IsZero() && !time.Now().Before(t.callDeadline) {
				t.callErr = status.Error(codes.DeadlineExceeded, "context deadline exceeded")
			}
		}
	case *http2.GoAwayFrame:
		t.goAway, t.goAwayLast = true, f.LastStreamID
		if t.stream > f.LastStreamID && !t.done {
			t.done = true
			t.callErr = &unprocessedError{status.Error(codes.Unavailable, "server sent GOAWAY before processing the call: "+f.ErrCode.String())}
		}
	case *http2.PushPromiseFrame:
		return errors.New("server pushed although push is disabled")
	}
	return nil
}

func (t *transport) onSetting(s http2.Setting) error {
	if err := s.Valid(); err != nil {
		return err
	}
	switch s.ID {
	case http2.SettingInitialWindowSize:
		delta := int64(s.Val) - t.peerInitWin
		t.peerInitWin = int64(s.Val)
		t.sendStream += delta
	case http2.SettingMaxFrameSize:
		t.peerMaxFrm = int(s.Val)
	case http2.SettingHeaderTableSize:
		t.henc.SetMaxDynamicTableSizeLimit(s.Val)
		t.block.reusable = false // the next block starts with a table size update
	}
	return nil
}

// onHeaderFragment collects a header block and, once it is complete,
// decodes it. Every block must be decoded, whatever its stream, to keep the
// HPACK table in step with the server's.
func (t *transport) onHeaderFragment(frag []byte, end bool) error {
	if len(t.hblock)+len(frag) > maxHeaderListSize {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	t.hblock = append(t.hblock, frag...)
	if !end {
		return nil
	}
	id := t.hblockID
	t.hblockID = 0
	if err := t.decodeHeaderBlock(id == t.stream && !t.done && !t.gotHeaders); err != nil {
		return err
	}
	if t.hfields.size > maxHeaderListSize {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if id == t.stream && !t.done {
		t.onHeaders(t.hblockEnd)
	}
	return nil
}

// decodeHeaderBlock decodes hblock into hfields, or takes its fields from
// the answer block cache.
func (t *transport) decodeHeaderBlock(keepMetadata bool) error {
	if t.answerBlocks.lookup(t.hblock, keepMetadata, &t.hfields) {
		return nil
	}
	t.hfields.reset(keepMetadata)
	if _, err := t.hdec.Write(t.hblock); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	if err := t.hdec.Close(); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	t.answerBlocks.save(t.hblock, &t.hfields)
	return nil
}

// answerBlockCache holds the last two answer header blocks that only
// referred to the HPACK table, and what they said. A server answers every
// call with the same headers and trailers; decoding such a block leaves the
// table as it is, so the same bytes mean the same fields. Decoding any other
// block empties the cache.
type answerBlockCache struct {
	entries [2]answerBlock
	next    int // the entry save replaces
}

type answerBlock struct {
	block  []byte // nil: unused
	fields hpackFields
}

// answerBlockMax bounds a cached block: blocks of indexed fields are a few
// bytes.
const answerBlockMax = 64

func (c *answerBlockCache) lookup(block []byte, keepMetadata bool, into *hpackFields) bool {
	for i := range c.entries {
		e := &c.entries[i]
		if e.block != nil && e.fields.keepMetadata == keepMetadata && bytes.Equal(e.block, block) {
			*into = e.fields
			return true
		}
	}
	return false
}

// save records a block just decoded into fields, or empties the cache when
// the block may have changed the table. Blocks with metadata are not kept:
// a caller owns the metadata it is given.
func (c *answerBlockCache) save(block []byte, fields *hpackFields) {
	if len(block) > answerBlockMax || !onlyIndexed(block) {
		*c = answerBlockCache{}
		return
	}
	if len(fields.metadata) > 0 {
		return
	}
	e := &c.entries[c.next]
	c.next = (c.next + 1) % len(c.entries)
	e.block = append(e.block[:0], block...)
	e.fields = *fields
}

func (t *transport) onHeaders(streamEnded bool) {
	h := &t.hfields
	if !t.gotHeaders {
		t.gotHeaders = true
		if h.status != "200" {
			t.done = true
			t.callErr = httpStatusError(h.status)
			return
		}
		if !isGRPCContentType(h.contentType) {
			t.done = true
			t.callErr = status.Error(codes.Unknown, "unexpected content-type "+strconv.Quote(h.contentType))
			return
		}
		if !streamEnded {
			t.header = h.metadata
			return
		}
		// Trailers-only: the status is in the headers.
	} else if !streamEnded {
		t.done = true
		t.callErr = status.Error(codes.Internal, "trailers without END_STREAM")
		return
	}
	t.done = true
	t.grpcStatus, t.grpcMessage = h.grpcStatus, h.grpcMessage
}

// hpackFields keeps what the client reads of one header block: the fields
// it acts on, and the metadata only for an answer's headers, the one block
// whose metadata a caller sees.
type hpackFields struct {
	keepMetadata bool
	size         int
	status       string
	contentType  string
	grpcStatus   string
	grpcMessage  string
	metadata     []hpack.HeaderField
}

func (h *hpackFields) reset(keepMetadata bool) {
	*h = hpackFields{keepMetadata: keepMetadata}
}

func (h *hpackFields) add(f hpack.HeaderField) {
	h.size += int(f.Size())
	switch f.Name {
	case ":status":
		h.status = f.Value
	case "content-type":
		h.contentType = f.Value
	case "grpc-status":
		h.grpcStatus = f.Value
	case "grpc-message":
		h.grpcMessage = f.Value
	default:
		if h.keepMetadata && (len(f.Name) == 0 || f.Name[0] != ':') {
			h.metadata = append(h.metadata, f)
		}
	}
}

func (t *transport) onData(f *http2.DataFrame) error {
	n := int32(f.Length)
	if n > 0 {
		t.recvUnacked += n
		if t.recvUnacked >= t.recvWindow/4 {
			if err := t.fr.WriteWindowUpdate(0, uint32(t.recvUnacked)); err != nil {
				return err
			}
			t.recvUnacked = 0
		}
	}
	if f.StreamID != t.stream || t.done {
		return nil
	}
	if !t.gotHeaders {
		t.done = true
		t.callErr = status.Error(codes.Internal, "DATA before HEADERS")
		return nil
	}
	t.msg = append(t.msg, f.Data()...)
	if len(t.msg) >= 5 {
		if size := binary.BigEndian.Uint32(t.msg[1:5]); int64(size) > int64(t.maxMsg) {
			// The rest of the answer would still arrive on this
			// connection: give it up.
			t.done, t.broken = true, true
			t.callErr = status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", size, t.maxMsg)
			return nil
		} else if len(t.msg) > 5+int(size) {
			// A unary answer is one message; more data is a broken (or
			// hostile) server, and must not grow the buffer without bound.
			t.done, t.broken = true, true
			t.callErr = status.Error(codes.Internal, "server sent more than one message")
			return nil
		}
	}
	if f.StreamEnded() {
		t.done = true
		t.callErr = status.Error(codes.Internal, "server closed the stream without sending trailers")
	}
	return nil
}

func (t *transport) answer() (*Answer, error) {
	code, err := strconv.ParseUint(t.grpcStatus, 10, 32)
	if err != nil {
		return nil, status.Error(codes.Unknown, "malformed grpc-status "+strconv.Quote(t.grpcStatus))
	}
	if code != 0 {
		return nil, status.Error(codes.Code(code), decodeGRPCMessage(t.grpcMessage))
	}
	if len(t.msg) < 5 {
		return nil, status.Error(codes.Internal, "server answered without a message")
	}
	size := binary.BigEndian.Uint32(t.msg[1:5])
	if t.msg[0] != 0 {
		return nil, status.Error(codes.Internal, "server sent a compressed message although none was accepted")
	}
	if int(size) != len(t.msg)-5 {
		return nil, status.Errorf(codes.Internal, "answer holds %d bytes after a message of %d", len(t.msg)-5, size)
	}
	return &Answer{Message: append([]byte(nil), t.msg[5:]...), Header: t.header, TLS: t.tls}, nil
}

// transportError turns a read or write failure into the call's status.
func (t *transport) transportError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return status.Error(codes.Unavailable, "connection closed by the server")
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		return status.Error(codes.Internal, "HTTP/2 protocol error: "+err.Error())
	}
	return status.Error(codes.Unavailable, "connection error: "+err.Error())
}

func rstError(code http2.ErrCode) error {
	switch code {
	case http2.ErrCodeRefusedStream:
		return &unprocessedError{status.Error(codes.Unavailable, "stream refused by the server")}
	case http2.ErrCodeCancel:
		return status.Error(codes.Canceled, "stream cancelled by the server")
	case http2.ErrCodeEnhanceYourCalm:
		return status.Error(codes.ResourceExhausted, "server asked to enhance your calm")
	case http2.ErrCodeInadequateSecurity:
		return status.Error(codes.PermissionDenied, "inadequate security")
	default:
		return status.Error(codes.Internal, "stream reset by the server: "+code.String())
	}
}

// httpStatusError maps a non-200 answer as the gRPC spec's HTTP-to-gRPC
// table does.
func httpStatusError(httpStatus string) error {
	var code codes.Code
	switch httpStatus {
	case "400":
		code = codes.Internal
	case "401":
		code = codes.Unauthenticated
	case "403":
		code = codes.PermissionDenied
	case "404":
		code = codes.Unimplemented
	case "429", "502", "503", "504":
		code = codes.Unavailable
	default:
		code = codes.Unknown
	}
	return status.Error(code, "unexpected HTTP status code "+httpStatus)
}

// isGRPCContentType accepts application/grpc and its +codec and ;parameter
// variants, on both sides of a call.
func isGRPCContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// encodeTimeout writes d as grpc-timeout: at most 8 digits, in the finest
// unit that fits, rounded up so the server never sees a shorter deadline.
func encodeTimeout(d time.Duration) string {
	const maxDigits = 99999999
	units := [...]struct {
		unit time.Duration
		name byte
	}{{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'}, {time.Second, 'S'}, {time.Minute, 'M'}, {time.Hour, 'H'}}
	for _, u := range units {
		n := d / u.unit
		if d%u.unit != 0 {
			n++
		}
		if n <= maxDigits {
			return strconv.FormatInt(int64(n), 10) + string(u.name)
		}
	}
	return strconv.Itoa(maxDigits) + "H"
}

// decodeGRPCMessage undoes grpc-message's percent-encoding; malformed
// escapes are kept as they are, as the spec asks.
func decodeGRPCMessage(s string) string {
	i := 0
	for i < len(s) && s[i] != '%' {
		i++
	}
	if i == len(s) {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}
