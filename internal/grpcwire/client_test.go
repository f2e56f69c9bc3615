package grpcwire

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec passes messages through as bytes, so a grpc-go server can answer
// any method without generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// referenceServer is grpc-go, the reference implementation the client must
// interoperate with. Its methods:
//
//	/t/Echo     answers the request
//	/t/Size     answers as many bytes as the request's decimal number
//	/t/Fail     fails with the code and message "code:message" in the request
//	/t/Sleep    blocks until its context ends, then records why
//	/t/Meta     answers the request's x-in header, sets x-out in its header
type referenceServer struct {
	addr     string
	server   *grpc.Server
	sleepErr chan error
}

func startReference(t *testing.T, opts ...grpc.ServerOption) *referenceServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rs := &referenceServer{addr: lis.Addr().String(), sleepErr: make(chan error, 10)}
	opts = append(opts, grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(rs.handle))
	rs.server = grpc.NewServer(opts...)
	go func() { _ = rs.server.Serve(lis) }()
	t.Cleanup(rs.server.Stop)
	return rs
}

func (rs *referenceServer) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	var resp []byte
	switch method {
	case "/t/Echo":
		resp = req
	case "/t/Size":
		n, err := strconv.Atoi(string(req))
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		resp = bytes.Repeat([]byte{'x'}, n)
	case "/t/Fail":
		code, msg, _ := strings.Cut(string(req), ":")
		n, _ := strconv.Atoi(code)
		return status.Error(codes.Code(n), msg)
	case "/t/Sleep":
		<-stream.Context().Done()
		rs.sleepErr <- stream.Context().Err()
		return stream.Context().Err()
	case "/t/Meta":
		md, _ := metadata.FromIncomingContext(stream.Context())
		if err := stream.SetHeader(metadata.Pairs("x-out", "from-server")); err != nil {
			return err
		}
		resp = []byte(strings.Join(md.Get("x-in"), ","))
	default:
		return status.Error(codes.Unimplemented, "unknown method "+method)
	}
	return stream.SendMsg(&resp)
}

func tcpClient(addr string) *ClientConn {
	return NewClientConn(ClientConnOptions{
		Authority: addr,
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	})
}

func TestClientAgainstGRPCGo(t *testing.T) {
	t.Parallel()
	rs := startReference(t)
	c := tcpClient(rs.addr)
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()

	t.Run("echo, many calls on one connection", func(t *testing.T) {
		// 3,000 calls of up to 20 KB push far more than the server's
		// default 64 KiB windows through: window updates must be honoured.
		for i := range 3000 {
			msg := bytes.Repeat([]byte{byte(i)}, i%20000)
			answer, err := c.Invoke(ctx, &Request{Method: "/t/Echo", Message: msg, Timeout: 5 * time.Second})
			require.NoError(t, err, "call %d", i)
			require.True(t, bytes.Equal(msg, answer.Message), "call %d: answer differs", i)
		}
	})
	t.Run("request larger than every window", func(t *testing.T) {
		msg := bytes.Repeat([]byte("abc"), 1<<20)
		answer, err := c.Invoke(ctx, &Request{Method: "/t/Echo", Message: msg})
		require.NoError(t, err)
		require.Equal(t, msg, answer.Message)
	})
	t.Run("answer of 4 MB", func(t *testing.T) {
		answer, err := c.Invoke(ctx, &Request{Method: "/t/Size", Message: []byte("4000000")})
		require.NoError(t, err)
		require.Len(t, answer.Message, 4000000)
	})
	t.Run("answer over the limit, then a normal call", func(t *testing.T) {
		_, err := c.Invoke(ctx, &Request{Method: "/t/Size", Message: []byte("5000000")})
		require.Equal(t, codes.ResourceExhausted, status.Code(err))
		require.Contains(t, status.Convert(err).Message(), "larger than max (5000000 vs. 4194304)")
		answer, err := c.Invoke(ctx, &Request{Method: "/t/Echo", Message: []byte("after")})
		require.NoError(t, err)
		require.Equal(t, "after", string(answer.Message))
	})
	t.Run("status code and message round-trip", func(t *testing.T) {
		msg := "model failed: 100% wrong, ünïcode ✓\nsecond line"
		_, err := c.Invoke(ctx, &Request{Method: "/t/Fail", Message: []byte("9:" + msg)})
		require.Equal(t, codes.FailedPrecondition, status.Code(err))
		require.Equal(t, msg, status.Convert(err).Message())
	})
	t.Run("a message spanning CONTINUATION frames", func(t *testing.T) {
		msg := strings.Repeat("long reason ", 3000) // 36 KB: more than a 16 KB frame
		_, err := c.Invoke(ctx, &Request{Method: "/t/Fail", Message: []byte("13:" + msg)})
		require.Equal(t, codes.Internal, status.Code(err))
		require.Equal(t, msg, status.Convert(err).Message())
		answer, err := c.Invoke(ctx, &Request{Method: "/t/Echo", Message: []byte("still in step")})
		require.NoError(t, err)
		require.Equal(t, "still in step", string(answer.Message))
	})
	t.Run("unknown method", func(t *testing.T) {
		_, err := c.Invoke(ctx, &Request{Method: "/t/Nope"})
		require.Equal(t, codes.Unimplemented, status.Code(err))
	})
	t.Run("metadata both ways", func(t *testing.T) {
		answer, err := c.Invoke(ctx, &Request{Method: "/t/Meta", Metadata: []hpack.HeaderField{{Name: "x-in", Value: "to-server"}}})
		require.NoError(t, err)
		require.Equal(t, "to-server", string(answer.Message))
		out, ok := answer.HeaderValue("x-out")
		require.True(t, ok)
		require.Equal(t, "from-server", out)
	})
	t.Run("deadline reaches the server, and the next call works", func(t *testing.T) {
		start := time.Now()
		_, err := c.Invoke(ctx, &Request{Method: "/t/Sleep", Timeout: 100 * time.Millisecond})
		require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
		require.Less(t, time.Since(start), 2*time.Second)
		select {
		case serverErr := <-rs.sleepErr:
			require.Error(t, serverErr)
		case <-time.After(5 * time.Second):
			t.Fatal("the server's handler was not cancelled")
		}
		answer, err := c.Invoke(ctx, &Request{Method: "/t/Echo", Message: []byte("again")})
		require.NoError(t, err)
		require.Equal(t, "again", string(answer.Message))
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			<-rs.sleepErrReady(t)
			cancel()
		}()
		_, err := c.Invoke(cctx, &Request{Method: "/t/Sleep"})
		require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
		<-rs.sleepErr
	})
}

// sleepErrReady is closed once a /t/Sleep call is probably in the server's
// handler; the test only needs the call to be in flight when it cancels.
func (rs *referenceServer) sleepErrReady(t *testing.T) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(ch) })
	return ch
}

func TestClientConcurrentCallsShareOneConnection(t *testing.T) {
	t.Parallel()
	rs := startReference(t)
	c := tcpClient(rs.addr)
	t.Cleanup(func() { _ = c.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				msg := []byte(strconv.Itoa(g*1000 + i))
				answer, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: msg})
				if err == nil && !bytes.Equal(answer.Message, msg) {
					err = status.Errorf(codes.Internal, "got %q for %q", answer.Message, msg)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestClientReconnectsAfterGoAway(t *testing.T) {
	t.Parallel()
	first, second := startReference(t), startReference(t)
	var addr atomic.Pointer[string]
	addr.Store(&first.addr)
	c := NewClientConn(ClientConnOptions{
		Authority:  "model",
		StaleAfter: time.Nanosecond, // check the idle connection before every call
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", *addr.Load())
		},
	})
	t.Cleanup(func() { _ = c.Close() })
	_, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: []byte("1")})
	require.NoError(t, err)

	// The model moves: the old server drains (GOAWAY, then a ping) and
	// waits for its clients to leave; new connections reach the new one.
	// No call may fail meanwhile, and the drain must end.
	addr.Store(&second.addr)
	drained := make(chan struct{})
	go func() {
		first.server.GracefulStop()
		close(drained)
	}()
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		msg := []byte(strconv.Itoa(i))
		answer, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: msg})
		require.NoError(t, err, "call %d", i)
		require.Equal(t, msg, answer.Message)
		select {
		case <-drained:
			return
		case <-deadline:
			t.Fatal("the old server is still draining: the client did not leave its connection")
		default:
		}
	}
}

func TestClientConnectErrors(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())

	c := tcpClient(addr)
	_, err = c.Invoke(context.Background(), &Request{Method: "/t/Echo"})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, err.Error(), "connection refused")
	require.Equal(t, codes.Unavailable, status.Code(c.Connect(context.Background())))

	require.NoError(t, c.Close())
	_, err = c.Invoke(context.Background(), &Request{Method: "/t/Echo"})
	require.ErrorIs(t, err, ErrClientClosed)
}

// TestClientEarlyAnswer: a server that refuses a request before taking all
// of it (too large) answers while the client still waits for flow-control
// window; the client reports the answer, ends its side of the stream and
// the connection carries the next call.
func TestClientEarlyAnswer(t *testing.T) {
	t.Parallel()
	srv := NewServer(ServerOptions{MaxRecvMsgSize: 1 << 20})
	srv.Handle("/t/Echo", func(_ context.Context, req []byte) ([]byte, error) { return append([]byte(nil), req...), nil })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	c := tcpClient(lis.Addr().String())
	t.Cleanup(func() { _ = c.Close() })
	// 12 MB: more than the server's 8 MiB windows, so the client must wait
	// for a WINDOW_UPDATE that never comes.
	_, err = c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: make([]byte, 12<<20), Timeout: 10 * time.Second})
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	answer, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: []byte("next"), Timeout: 10 * time.Second})
	require.NoError(t, err)
	require.Equal(t, "next", string(answer.Message))
}

// TestClientTimeoutBoundsDial: a host that drops packets makes a dial hang;
// the call's own Timeout must bound it even when ctx has no deadline.
func TestClientTimeoutBoundsDial(t *testing.T) {
	t.Parallel()
	c := NewClientConn(ClientConnOptions{
		Authority: "blackhole",
		Dial: func(ctx context.Context) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	})
	start := time.Now()
	_, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Timeout: 50 * time.Millisecond})
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestClientTLS(t *testing.T) {
	t.Parallel()
	cert, pool := srvSelfSigned(t)
	rs := startReference(t, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	dial := func(roots *x509.CertPool) DialFunc {
		return func(ctx context.Context) (net.Conn, error) {
			d := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}}
			return d.DialContext(ctx, "tcp", rs.addr)
		}
	}
	c := NewClientConn(ClientConnOptions{Authority: "localhost", TLS: true, Dial: dial(pool)})
	t.Cleanup(func() { _ = c.Close() })
	answer, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: []byte("secret")})
	require.NoError(t, err)
	require.Equal(t, "secret", string(answer.Message))
	require.NotNil(t, answer.TLS)
	require.Equal(t, "h2", answer.TLS.NegotiatedProtocol)
	require.Equal(t, cert.Leaf.Raw, answer.TLS.PeerCertificates[0].Raw)

	untrusting := NewClientConn(ClientConnOptions{Authority: "localhost", TLS: true, Dial: dial(x509.NewCertPool())})
	t.Cleanup(func() { _ = untrusting.Close() })
	_, err = untrusting.Invoke(context.Background(), &Request{Method: "/t/Echo"})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Contains(t, err.Error(), "certificate signed by unknown authority")
}

func TestEncodeTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{time.Nanosecond, "1n"},
		{99999999 * time.Nanosecond, "99999999n"},
		{100 * time.Millisecond, "100000u"},
		{60 * time.Second, "60000000u"},
		{100000*time.Second + 1, "100001S"},
		{1000 * time.Hour, "3600000S"},
		{time.Duration(1<<63 - 1), "2562048H"},
	} {
		require.Equal(t, tc.want, encodeTimeout(tc.in), "%s", tc.in)
	}
}

func TestDecodeGRPCMessage(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":                "plain",
		"100%25 sure":          "100% sure",
		"caf%C3%A9":            "café",
		"bad %zz escape":       "bad %zz escape",
		"trailing %":           "trailing %",
		"trailing %4":          "trailing %4",
		"line%0Abreak":         "line\nbreak",
		"%E2%9C%93%20done%20%": "✓ done %",
		"":                     "",
	} {
		require.Equal(t, want, decodeGRPCMessage(in), "%q", in)
	}
}

// TestHeaderBlockReuse encodes a run of requests as a connection does and
// decodes them with a decoder kept in step, as the server's is: a reused
// block must decode to the request's fields.
func TestHeaderBlockReuse(t *testing.T) {
	t.Parallel()
	tr := &transport{opts: &ClientConnOptions{Authority: "model:50051", UserAgent: "ua"}}
	tr.hw = sliceWriter{&tr.hbuf}
	tr.henc = hpack.NewEncoder(tr.hw)
	dec := hpack.NewDecoder(4096, nil)

	own := hpack.HeaderField{Name: "grpc-timeout", Value: "5S"}
	md := []hpack.HeaderField{{Name: "x-sig", Value: "a"}}
	steps := []struct {
		name     string
		setting  *http2.Setting
		req      Request
		timeout  hpack.HeaderField
		reusable bool // the block may be sent again
	}{
		{name: "First", req: Request{Method: "/s/Call"}, timeout: own},
		{name: "Indexed", req: Request{Method: "/s/Call"}, timeout: own, reusable: true},
		{name: "Reused", req: Request{Method: "/s/Call"}, timeout: own, reusable: true},
		{name: "OtherMethod", req: Request{Method: "/s/Setup"}, timeout: own},
		{name: "BackToCall", req: Request{Method: "/s/Call"}, timeout: own, reusable: true},
		{name: "OtherTimeout", req: Request{Method: "/s/Call"}, timeout: hpack.HeaderField{Name: "grpc-timeout", Value: "1S"}},
		{name: "Metadata", req: Request{Method: "/s/Call", Metadata: md}, timeout: own},
		{name: "MetadataIndexed", req: Request{Method: "/s/Call", Metadata: md}, timeout: own, reusable: true},
		{name: "MetadataChanged", req: Request{Method: "/s/Call", Metadata: []hpack.HeaderField{{Name: "x-sig", Value: "b"}}}, timeout: own},
		{name: "Sensitive", req: Request{Method: "/s/Call"}, timeout: hpack.HeaderField{Name: "grpc-timeout", Value: "4S", Sensitive: true}},
		{name: "SensitiveAgain", req: Request{Method: "/s/Call"}, timeout: hpack.HeaderField{Name: "grpc-timeout", Value: "4S", Sensitive: true}},
		{name: "TableShrunk", setting: &http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}, req: Request{Method: "/s/Call"}, timeout: own},
		{name: "NoTable", req: Request{Method: "/s/Call"}, timeout: own},
	}
	for _, step := range steps {
		if step.setting != nil {
			require.NoError(t, tr.onSetting(*step.setting), step.name)
		}
		block, err := tr.headerBlock(&step.req, step.timeout)
		require.NoError(t, err, step.name)
		got, err := dec.DecodeFull(block)
		require.NoError(t, err, step.name)
		want := []hpack.HeaderField{
			{Name: ":method", Value: "POST"},
			{Name: ":scheme", Value: "http"},
			{Name: ":path", Value: step.req.Method},
			{Name: ":authority", Value: "model:50051"},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "user-agent", Value: "ua"},
			{Name: "te", Value: "trailers"},
			step.timeout,
		}
		want = append(want, step.req.Metadata...)
		require.Len(t, got, len(want), step.name)
		for i := range got {
			// Sensitive is the encoder's input; the decoder sets it for a
			// never-indexed literal.
			got[i].Sensitive = want[i].Sensitive
		}
		require.Equal(t, want, got, step.name)
		require.Equal(t, step.reusable, tr.block.reusable, step.name)
	}
}

func TestOnlyIndexed(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		block []byte
		want  bool
	}{
		"Empty":             {nil, true},
		"Indexed":           {[]byte{0x82, 0xbe, 0xff, 0x80, 0x01, 0x83}, true},
		"IndexedTruncated":  {[]byte{0xff, 0x80}, false},
		"Literal":           {[]byte{0x82, 0x40, 1, 'a', 1, 'b'}, false},
		"LiteralNotIndexed": {[]byte{0x0f, 0x01, 1, 'b'}, false},
		"TableSizeUpdate":   {[]byte{0x20, 0x82}, false},
	} {
		require.Equal(t, tt.want, onlyIndexed(tt.block), name)
	}
}

// TestAnswerBlockCache decodes a run of answer header blocks as a
// connection does: blocks taken from the cache must say what decoding them
// would.
func TestAnswerBlockCache(t *testing.T) {
	t.Parallel()
	tr := &transport{}
	tr.hdec = hpack.NewDecoder(4096, tr.hfields.add)
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	block := func(fields ...hpack.HeaderField) []byte {
		buf.Reset()
		for _, f := range fields {
			require.NoError(t, enc.WriteField(f))
		}
		return bytes.Clone(buf.Bytes())
	}
	ok := []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}}
	trailers := []hpack.HeaderField{{Name: "grpc-status", Value: "0"}}
	failed := []hpack.HeaderField{{Name: "grpc-status", Value: "13"}, {Name: "grpc-message", Value: "boom", Sensitive: true}}
	withMD := append(slices.Clone(ok), hpack.HeaderField{Name: "x-sig", Value: "s"})

	steps := []struct {
		name   string
		fields []hpack.HeaderField
		keep   bool
		want   hpackFields
	}{
		{name: "Headers", fields: ok, keep: true, want: hpackFields{status: "200", contentType: "application/grpc"}},
		{name: "Trailers", fields: trailers, want: hpackFields{grpcStatus: "0"}},
		{name: "HeadersIndexed", fields: ok, keep: true, want: hpackFields{status: "200", contentType: "application/grpc"}},
		{name: "TrailersIndexed", fields: trailers, want: hpackFields{grpcStatus: "0"}},
		{name: "HeadersCached", fields: ok, keep: true, want: hpackFields{status: "200", contentType: "application/grpc"}},
		{name: "HeadersNotKeepingMetadata", fields: ok, want: hpackFields{status: "200", contentType: "application/grpc"}},
		{name: "TrailersCached", fields: trailers, want: hpackFields{grpcStatus: "0"}},
		{name: "Failed", fields: failed, want: hpackFields{grpcStatus: "13", grpcMessage: "boom"}},
		{name: "HeadersAfterLiteral", fields: ok, keep: true, want: hpackFields{status: "200", contentType: "application/grpc"}},
		{name: "Metadata", fields: withMD, keep: true, want: hpackFields{status: "200", contentType: "application/grpc", metadata: withMD[2:]}},
		{name: "MetadataIndexed", fields: withMD, keep: true, want: hpackFields{status: "200", contentType: "application/grpc", metadata: withMD[2:]}},
		{name: "MetadataAgain", fields: withMD, keep: true, want: hpackFields{status: "200", contentType: "application/grpc", metadata: withMD[2:]}},
		{name: "TrailersLast", fields: trailers, want: hpackFields{grpcStatus: "0"}},
	}
	for _, step := range steps {
		tr.hblock = block(step.fields...)
		require.NoError(t, tr.decodeHeaderBlock(step.keep), step.name)
		got := tr.hfields
		got.size = 0
		step.want.keepMetadata = step.keep
		require.Equal(t, step.want, got, step.name)
	}
}
