package grpcwire

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
)

// requireHeadersLikeFramer reads one HEADERS frame with frameReader and with
// the Framer alone: the results and errors must agree.
func requireHeadersLikeFramer(t *testing.T, flags http2.Flags, streamID uint32, payload []byte) {
	t.Helper()
	frame := append([]byte{byte(len(payload) >> 16), byte(len(payload) >> 8), byte(len(payload)), byte(http2.FrameHeaders), byte(flags),
		byte(streamID >> 24), byte(streamID >> 16), byte(streamID >> 8), byte(streamID)}, payload...)

	want, wantErr := http2.NewFramer(nil, bytes.NewReader(frame)).ReadFrame()
	r := bytes.NewReader(frame)
	fr := http2.NewFramer(nil, r)
	fr.SetReuseFrames()
	frames := frameReader{fr: fr, r: r}
	f, got, err := frames.next()
	if wantErr != nil {
		require.Equal(t, wantErr, err)
		return
	}
	require.NoError(t, err)
	require.Nil(t, f)
	hf := want.(*http2.HeadersFrame)
	require.Equal(t, headersFrame{
		streamID:   hf.StreamID,
		endStream:  hf.StreamEnded(),
		endHeaders: hf.HeadersEnded(),
		fragment:   hf.HeaderBlockFragment(),
	}, got)
}

func TestFrameReaderHeaders(t *testing.T) {
	t.Parallel()
	all := http2.FlagHeadersEndStream | http2.FlagHeadersEndHeaders | http2.FlagHeadersPadded | http2.FlagHeadersPriority
	tests := map[string]struct {
		flags    http2.Flags
		streamID uint32
		payload  []byte
	}{
		"Plain":            {http2.FlagHeadersEndHeaders, 1, []byte{0x83, 0x86}},
		"PaddedPriority":   {all, 3, []byte{2, 0x80, 0, 0, 1, 15, 0x83, 0, 0}},
		"PaddingTooLong":   {http2.FlagHeadersPadded, 1, []byte{5, 0x83}},
		"PaddingMissing":   {http2.FlagHeadersPadded, 1, nil},
		"PriorityTooShort": {http2.FlagHeadersPriority, 1, []byte{0, 0, 0, 1}},
		"StreamZero":       {http2.FlagHeadersEndHeaders, 0, []byte{0x83}},
		"Empty":            {0, 5, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireHeadersLikeFramer(t, tt.flags, tt.streamID, tt.payload)
		})
	}
}

func FuzzFrameReaderHeaders(f *testing.F) {
	f.Add(byte(http2.FlagHeadersEndHeaders), uint32(1), []byte{0x83})
	f.Add(byte(0xff), uint32(3), []byte{2, 0x80, 0, 0, 1, 15, 0x83, 0, 0})
	f.Fuzz(func(t *testing.T, flags byte, streamID uint32, payload []byte) {
		if len(payload) > 1<<14 {
			return
		}
		requireHeadersLikeFramer(t, http2.Flags(flags), streamID&0x7fffffff, payload)
	})
}
