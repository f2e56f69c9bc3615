package mrpb

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// TestMethodPaths pins what the Python model runner routes on.
func TestMethodPaths(t *testing.T) {
	t.Parallel()

	require.Equal(t, "/dynamic_subclass.DynamicSubclassService/Call", DynamicSubclassService_Call_FullMethodName)
	require.Equal(t, "/dynamic_subclass.DynamicSubclassService/Rest", DynamicSubclassService_Rest_FullMethodName)
	require.Equal(t, "/dynamic_subclass.DynamicSubclassService/Setup", DynamicSubclassService_Setup_FullMethodName)
	require.Equal(t, "dynamic_subclass.DynamicSubclassService", DynamicSubclassService_ServiceDesc.ServiceName)
	require.Equal(t, "commons.Variant", string((&Variant{}).ProtoReflect().Descriptor().FullName()))
}

// TestGoldenBytes pins field numbers and wire types: a change in the .proto
// that would break compatibility with the Python runner changes these bytes.
func TestGoldenBytes(t *testing.T) {
	t.Parallel()

	int60 := &Variant{Type: VariantType_INT, Value: []byte{0x3c, 0, 0, 0, 0, 0, 0, 0}}
	tests := []struct {
		name string
		msg  proto.Message
		want string
	}{
		{
			// type = field 2 (varint 0x10), value = field 3 (bytes 0x1a); no field 1.
			name: "VariantInt60",
			msg:  int60,
			want: "1002" + "1a08" + "3c00000000000000",
		},
		{
			name: "CallRequestPredict",
			msg: &CallRequest{
				MethodName: "predict",
				MethodArguments: []*Argument{
					{Position: 1, Data: &Variant{Type: VariantType_STRING, Value: []byte("BTC")}},
					{Position: 2, Data: int60},
				},
				MethodKwArguments: []*KwArgument{{Keyword: "k", Data: &Variant{Type: VariantType_DOUBLE, Value: []byte{0, 0, 0, 0, 0, 0, 0xe0, 0x3f}}}},
			},
			want: "0a07" + hex.EncodeToString([]byte("predict")) +
				"12" + "0b" + "0801" + "1207" + "1003" + "1a03" + hex.EncodeToString([]byte("BTC")) +
				"12" + "10" + "0802" + "120c" + "1002" + "1a08" + "3c00000000000000" +
				"1a" + "11" + "0a01" + "6b" + "120c" + "1001" + "1a08" + "000000000000e03f",
		},
		{
			name: "CallResponseJSON",
			msg: &CallResponse{
				Status:         &Status{Code: "SUCCESS"},
				MethodResponse: &Variant{Type: VariantType_JSON, Value: []byte(`{}`)},
			},
			want: "0a09" + "0a07" + hex.EncodeToString([]byte("SUCCESS")) + "1206" + "1006" + "1a02" + "7b7d",
		},
		{
			name: "SetupRequest",
			msg:  &SetupRequest{ClassName: "cruncher.ModelBaseClass"},
			want: "0a17" + hex.EncodeToString([]byte("cruncher.ModelBaseClass")),
		},
		{
			name: "SetupResponse",
			msg:  &SetupResponse{Status: &Status{Code: "BAD_IMPLEMENTATION", Message: "x"}},
			want: "0a17" + "0a12" + hex.EncodeToString([]byte("BAD_IMPLEMENTATION")) + "1201" + "78",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := proto.MarshalOptions{Deterministic: true}.Marshal(tt.msg)
			require.NoError(t, err)
			require.Equal(t, tt.want, hex.EncodeToString(got))

			back := tt.msg.ProtoReflect().New().Interface()
			require.NoError(t, proto.Unmarshal(got, back))
			require.True(t, proto.Equal(tt.msg, back))
		})
	}
}
