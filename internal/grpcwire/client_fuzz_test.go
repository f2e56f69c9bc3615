package grpcwire

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// validAnswer is what a server sends for a successful call on stream 1:
// SETTINGS, headers, one message, trailers.
func validAnswer(tb testing.TB, msg []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	headerBlock := func(fields ...hpack.HeaderField) []byte {
		block.Reset()
		for _, f := range fields {
			if err := enc.WriteField(f); err != nil {
				tb.Fatal(err)
			}
		}
		return bytes.Clone(block.Bytes())
	}
	data := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	err := fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
	if err == nil {
		err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, BlockFragment: headerBlock(
			hpack.HeaderField{Name: ":status", Value: "200"}, hpack.HeaderField{Name: "content-type", Value: "application/grpc"})})
	}
	if err == nil {
		err = fr.WriteData(1, false, data)
	}
	if err == nil {
		err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true, BlockFragment: headerBlock(
			hpack.HeaderField{Name: "grpc-status", Value: "0"})})
	}
	if err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// hostileServer returns the client's end of a connection whose server reads
// everything and answers with answer, whatever the request; it stays open
// until the client closes it, as a TCP peer's buffers would.
func hostileServer(answer []byte) net.Conn {
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		go func() { _, _ = server.Write(answer) }()
		_, _ = io.Copy(io.Discard, server)
	}()
	return client
}

// FuzzClientFrames: a model is the participant's code, so whatever bytes it
// answers with, the client must return within the call's deadline with a
// status, without panicking or growing memory without bound.
func FuzzClientFrames(f *testing.F) {
	valid := validAnswer(f, []byte("hello"))
	f.Add(valid)
	f.Add(valid[:len(valid)-3])                       // truncated trailers
	f.Add(append(bytes.Clone(valid), valid[9+6:]...)) // frames again after the end
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, answer []byte) {
		c := NewClientConn(ClientConnOptions{
			Authority: "fuzz",
			Dial: func(context.Context) (net.Conn, error) {
				return hostileServer(answer), nil
			},
		})
		defer c.Close()
		start := time.Now()
		answerMsg, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: []byte("hi"), Timeout: 50 * time.Millisecond})
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the call took %s", time.Since(start))
		}
		if err == nil {
			if answerMsg == nil {
				t.Fatal("no error and no answer")
			}
			return
		}
		if _, ok := status.FromError(err); !ok {
			t.Fatalf("not a status error: %v", err)
		}
	})
}

func TestClientReadsAValidAnswer(t *testing.T) {
	t.Parallel()
	// The fuzz target's seed must itself be a success, or the fuzzer starts
	// from nothing useful.
	answer := validAnswer(t, []byte("hello"))
	c := NewClientConn(ClientConnOptions{
		Authority: "pipe",
		Dial: func(context.Context) (net.Conn, error) {
			return hostileServer(answer), nil
		},
	})
	defer c.Close()
	got, err := c.Invoke(context.Background(), &Request{Method: "/t/Echo", Message: []byte("hi"), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Message) != "hello" {
		t.Fatalf("got %q", got.Message)
	}
	_, err = c.Invoke(context.Background(), &Request{Method: "/t/Echo", Timeout: 200 * time.Millisecond})
	if code := status.Code(err); code != codes.Unavailable && code != codes.DeadlineExceeded {
		t.Fatalf("after the server closed: %v", err)
	}
}
