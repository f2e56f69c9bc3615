package mrpb

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func wireMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// wireRequests are CallRequests as clients encode them, and the odd shapes
// the decoder leaves to proto.Unmarshal.
func wireRequests(t testing.TB) map[string][]byte {
	t.Helper()
	int60 := &Variant{Type: VariantType_INT, Value: []byte{60, 0, 0, 0, 0, 0, 0, 0}}
	predict := wireMarshal(t, &CallRequest{MethodName: "predict", MethodArguments: []*Argument{
		{Position: 1, Data: &Variant{Type: VariantType_STRING, Value: []byte("BTCUSDT")}},
		{Position: 2, Data: int60},
		{Position: 3, Data: &Variant{Type: VariantType_JSON, Value: []byte(`{"a": 1}`)}},
	}})
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	bytesField := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(tag(num, protowire.BytesType), v)
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	return map[string][]byte{
		"ArgumentWithoutData":  wireMarshal(t, &CallRequest{MethodName: "m", MethodArguments: []*Argument{{Position: 7}}}),
		"DuplicateName":        cat(bytesField(1, []byte("a")), bytesField(1, []byte("b"))),
		"DuplicateVariant":     cat(bytesField(2, cat(bytesField(2, wireMarshal(t, int60)), bytesField(2, []byte{0x10, 3})))),
		"Empty":                nil,
		"EmptyVariant":         wireMarshal(t, &CallRequest{MethodArguments: []*Argument{{Data: &Variant{}}}}),
		"EmptyValueAfterValue": cat(bytesField(2, bytesField(2, cat(bytesField(3, []byte("x")), bytesField(3, nil))))),
		"FieldZero":            cat(tag(0, protowire.BytesType), []byte{0}),
		"InvalidUTF8Keyword":   cat(bytesField(3, bytesField(1, []byte{0xff}))),
		"InvalidUTF8Name":      bytesField(1, []byte{0xff, 'a'}),
		"Kwargs": wireMarshal(t, &CallRequest{MethodName: "predict", MethodKwArguments: []*KwArgument{
			{Keyword: "horizon", Data: int60}, {Keyword: "step"}, {Keyword: "horizon", Data: &Variant{Type: VariantType_NONE}},
		}}),
		"NameAsVarint":      cat(tag(1, protowire.VarintType), []byte{1}),
		"NegativeType":      cat(bytesField(2, bytesField(2, protowire.AppendVarint(tag(2, protowire.VarintType), uint64(1<<64-3))))),
		"PositionOverflow":  cat(bytesField(2, protowire.AppendVarint(tag(1, protowire.VarintType), 1<<40+5))),
		"Predict":           predict,
		"PredictTwice":      cat(predict, predict),
		"ReservedField1":    cat(bytesField(2, bytesField(2, cat(tag(1, protowire.VarintType), []byte{1})))),
		"TruncatedArgument": predict[:len(predict)-3],
		"TruncatedVarint":   cat(bytesField(2, cat(tag(1, protowire.VarintType), []byte{0x80}))),
		"UnknownField":      cat(predict, bytesField(9, []byte("x"))),
		"VarintTooLong":     cat(bytesField(2, cat(tag(1, protowire.VarintType), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}))),
	}
}

// requireSameRequest decodes b with d and with proto.Unmarshal.
func requireSameRequest(t testing.TB, d *CallRequestDecoder, b []byte) {
	t.Helper()
	var want CallRequest
	wantErr := proto.Unmarshal(b, &want)
	got, err := d.Decode(b)
	if wantErr != nil {
		require.Error(t, err)
		return
	}
	require.NoError(t, err)
	require.True(t, proto.Equal(&want, got), "want %v\ngot  %v", &want, got)
	// proto.Equal does not tell nil from empty.
	require.Equal(t, want.MethodArguments == nil, got.MethodArguments == nil)
	require.Equal(t, want.MethodKwArguments == nil, got.MethodKwArguments == nil)
	for i, a := range want.GetMethodArguments() {
		require.Equal(t, a.GetData().GetValue() == nil, got.MethodArguments[i].GetData().GetValue() == nil)
	}
}

func TestCallRequestDecoder(t *testing.T) {
	t.Parallel()
	requests := wireRequests(t)
	var d CallRequestDecoder
	for name, b := range requests {
		t.Run(name, func(t *testing.T) {
			requireSameRequest(t, &d, b)
			// A reused decoder forgets the previous request.
			requireSameRequest(t, &d, requests["Predict"])
			requireSameRequest(t, &d, b)
		})
	}
}

// TestCallRequestDecoderAllocations is not parallel: AllocsPerRun refuses
// to run in parallel tests.
func TestCallRequestDecoderAllocations(t *testing.T) {
	var d CallRequestDecoder
	b := wireRequests(t)["Kwargs"]
	requireSameRequest(t, &d, b)
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = d.Decode(b) }))
}

func FuzzCallRequestDecoder(f *testing.F) {
	for _, b := range wireRequests(f) {
		f.Add(b)
	}
	var d CallRequestDecoder
	predict := wireRequests(f)["Predict"]
	f.Fuzz(func(t *testing.T, b []byte) {
		requireSameRequest(t, &d, b)
		requireSameRequest(t, &d, predict)
	})
}

func wireResponses(t testing.TB) map[string][]byte {
	t.Helper()
	ok := &Status{Code: "SUCCESS"}
	return map[string][]byte{
		"Empty":          nil,
		"EmptyMessages":  wireMarshal(t, &CallResponse{Status: &Status{}, MethodResponse: &Variant{}}),
		"Failed":         wireMarshal(t, &CallResponse{Status: &Status{Code: "MODEL_FAILED", Message: "boom"}}),
		"None":           wireMarshal(t, &CallResponse{Status: ok}),
		"OtherCode":      wireMarshal(t, &CallResponse{Status: &Status{Code: "WHATEVER"}}),
		"Prediction":     wireMarshal(t, &CallResponse{Status: ok, MethodResponse: &Variant{Type: VariantType_JSON, Value: []byte(`{"value": 0.5}`)}}),
		"StatusTwice":    append(wireMarshal(t, &CallResponse{Status: ok}), wireMarshal(t, &CallResponse{Status: &Status{Message: "m"}})...),
		"UnknownField":   append(wireMarshal(t, &CallResponse{Status: ok}), 0x18, 1),
		"UnknownInside":  {0x0a, 2, 0x18, 1},
		"VariantTwice":   append(wireMarshal(t, &CallResponse{MethodResponse: &Variant{Type: VariantType_INT}}), wireMarshal(t, &CallResponse{MethodResponse: &Variant{Value: []byte("x")}})...),
		"BadUTF8Message": {0x0a, 3, 0x12, 1, 0xff},
	}
}

func requireSameResponse(t testing.TB, d *CallResponseDecoder, b []byte) {
	t.Helper()
	var want CallResponse
	wantErr := proto.Unmarshal(b, &want)
	got, err := d.Decode(b)
	if wantErr != nil {
		require.Error(t, err)
		return
	}
	require.NoError(t, err)
	require.True(t, proto.Equal(&want, got), "want %v\ngot  %v", &want, got)
	require.Equal(t, want.GetMethodResponse().GetValue() == nil, got.GetMethodResponse().GetValue() == nil)
}

func TestCallResponseDecoder(t *testing.T) {
	t.Parallel()
	responses := wireResponses(t)
	var d CallResponseDecoder
	for name, b := range responses {
		t.Run(name, func(t *testing.T) {
			requireSameResponse(t, &d, b)
			// A reused decoder forgets the previous answer.
			requireSameResponse(t, &d, responses["Prediction"])
			requireSameResponse(t, &d, b)
		})
	}
}

// TestCallResponseDecoderAllocations is not parallel: AllocsPerRun refuses
// to run in parallel tests.
func TestCallResponseDecoderAllocations(t *testing.T) {
	b := wireResponses(t)["Prediction"]
	var value []byte
	var d CallResponseDecoder
	require.Zero(t, testing.AllocsPerRun(100, func() {
		resp, err := d.Decode(b)
		require.NoError(t, err)
		value = resp.GetMethodResponse().GetValue()
	}))
	require.JSONEq(t, `{"value": 0.5}`, string(value))
}

func FuzzCallResponseDecoder(f *testing.F) {
	for _, b := range wireResponses(f) {
		f.Add(b)
	}
	var d CallResponseDecoder
	prediction := wireResponses(f)["Prediction"]
	f.Fuzz(func(t *testing.T, b []byte) {
		requireSameResponse(t, &d, b)
		requireSameResponse(t, &d, prediction)
	})
}

// requireSameMarshal encodes with MarshalCallResponse and proto.Marshal.
func requireSameMarshal(t testing.TB, status *Status, v *Variant) {
	t.Helper()
	want, wantErr := proto.Marshal(&CallResponse{Status: status, MethodResponse: v})
	got, err := MarshalCallResponse(status, v)
	if wantErr != nil {
		require.Error(t, err)
		return
	}
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestMarshalCallResponse(t *testing.T) {
	t.Parallel()
	withUnknown := &Status{}
	require.NoError(t, proto.Unmarshal([]byte{0x0a, 1, 'S', 0x18, 1}, withUnknown))
	tests := map[string]struct {
		status *Status
		v      *Variant
	}{
		"Empty":        {},
		"EmptyStatus":  {status: &Status{}},
		"EmptyVariant": {v: &Variant{}},
		"Failed":       {status: &Status{Code: "MODEL_FAILED", Message: "boom"}},
		"InvalidUTF8":  {status: &Status{Code: "MODEL_FAILED", Message: "\xff"}},
		"LongValue":    {status: &Status{Code: "SUCCESS"}, v: &Variant{Type: VariantType_JSON, Value: make([]byte, 300)}},
		"NegativeType": {v: &Variant{Type: -2}},
		"Prediction":   {status: &Status{Code: "SUCCESS"}, v: &Variant{Type: VariantType_JSON, Value: []byte(`{"value": 0.5}`)}},
		"UnknownField": {status: withUnknown},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			requireSameMarshal(t, tt.status, tt.v)
		})
	}
}

func FuzzMarshalCallResponse(f *testing.F) {
	f.Add(true, "SUCCESS", "", true, int32(6), []byte(`{"value": 0.5}`))
	f.Add(true, "MODEL_FAILED", "\xff", false, int32(0), []byte(nil))
	f.Add(false, "", "", true, int32(-1), make([]byte, 200))
	f.Fuzz(func(t *testing.T, hasStatus bool, code, message string, hasVariant bool, typ int32, value []byte) {
		var status *Status
		if hasStatus {
			status = &Status{Code: code, Message: message}
		}
		var v *Variant
		if hasVariant {
			v = &Variant{Type: VariantType(typ), Value: value}
		}
		requireSameMarshal(t, status, v)
	})
}

func TestCallRequestDecoderRelease(t *testing.T) {
	t.Parallel()
	many := &CallRequest{MethodName: "m"}
	for i := range 2 * maxKeptArguments {
		many.MethodArguments = append(many.MethodArguments, &Argument{Position: uint32(i), Data: &Variant{Value: []byte("x")}})
	}
	var d CallRequestDecoder
	requireSameRequest(t, &d, wireMarshal(t, many))
	d.Release()
	require.Len(t, d.argPool, maxKeptArguments)
	require.Nil(t, d.args)
	for _, slot := range d.argPool {
		require.Nil(t, slot.data.Value, "no reference into the released input")
	}
	// The decoder still decodes after a release.
	requireSameRequest(t, &d, wireRequests(t)["Predict"])
	requireSameRequest(t, &d, wireMarshal(t, many))
}
