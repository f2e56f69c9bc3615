package grpcwire

import (
	"io"

	"golang.org/x/net/http2"
)

// frameReader reads frames with an http2.Framer, except the payload of
// HEADERS frames, which it reads and parses itself: the Framer allocates a
// HeadersFrame for each, and a call has one each way plus the trailers.
// Header blocks are decoded by our own HPACK callbacks either way.
type frameReader struct {
	fr  *http2.Framer
	r   io.Reader // the Framer's reader
	buf []byte    // the last HEADERS payload
}

// headersFrame is a HEADERS frame read by frameReader.
type headersFrame struct {
	streamID   uint32
	endStream  bool
	endHeaders bool
	fragment   []byte // the header block fragment; valid until the next read
}

// frKeepBuf is the largest HEADERS payload buffer kept for the next frame.
const frKeepBuf = 64 << 10

// next reads a frame: a HEADERS frame as h (f nil), any other as f. The
// Framer still checks the frame's size and its order (CONTINUATIONs follow
// their HEADERS), and errors are the Framer's.
func (r *frameReader) next() (f http2.Frame, h headersFrame, err error) {
	fh, err := r.fr.ReadFrameHeader()
	if err != nil {
		return nil, h, err
	}
	if fh.Type != http2.FrameHeaders {
		f, err = r.fr.ReadFrameForHeader(fh)
		return f, h, err
	}
	if cap(r.buf) > frKeepBuf {
		r.buf = nil
	}
	if cap(r.buf) < int(fh.Length) {
		r.buf = make([]byte, fh.Length)
	}
	p := r.buf[:fh.Length]
	if _, err := io.ReadFull(r.r, p); err != nil {
		return nil, h, err
	}
	h, err = parseHeadersFrame(fh, p)
	return nil, h, err
}

// parseHeadersFrame parses a HEADERS payload as the Framer does, with its
// errors: padding and priority are skipped.
func parseHeadersFrame(fh http2.FrameHeader, p []byte) (headersFrame, error) {
	if fh.StreamID == 0 {
		return headersFrame{}, http2.ConnectionError(http2.ErrCodeProtocol)
	}
	padLength := 0
	if fh.Flags.Has(http2.FlagHeadersPadded) {
		if len(p) < 1 {
			return headersFrame{}, io.ErrUnexpectedEOF
		}
		padLength, p = int(p[0]), p[1:]
	}
	if fh.Flags.Has(http2.FlagHeadersPriority) {
		// Stream dependency (4 bytes) and weight (1).
		if len(p) < 5 {
			return headersFrame{}, io.ErrUnexpectedEOF
		}
		p = p[5:]
	}
	if len(p) < padLength {
		return headersFrame{}, http2.StreamError{StreamID: fh.StreamID, Code: http2.ErrCodeProtocol}
	}
	return headersFrame{
		streamID:   fh.StreamID,
		endStream:  fh.Flags.Has(http2.FlagHeadersEndStream),
		endHeaders: fh.Flags.Has(http2.FlagHeadersEndHeaders),
		fragment:   p[:len(p)-padLength],
	}, nil
}
