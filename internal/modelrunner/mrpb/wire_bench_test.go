package mrpb

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

func BenchmarkCallRequestDecode(b *testing.B) {
	in := wireRequests(b)["Predict"]
	b.Run("Decoder", func(b *testing.B) {
		var d CallRequestDecoder
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Decode(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req CallRequest
			if err := proto.Unmarshal(in, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
