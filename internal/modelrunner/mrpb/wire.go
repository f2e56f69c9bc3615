package mrpb

import (
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The codecs in this file handle the two messages of every model call, the
// CallRequest a host reads and the CallResponse the node reads, without the
// protobuf runtime: its reflection allocates every message, slice, string
// and byte slice, a dozen objects per call on each side at a hundred calls
// per fan-out. The decoders only take the shapes protobuf encoders write
// (known fields with their wire types, a message field at most once);
// anything else goes to proto.Unmarshal, so the result is always what
// proto.Unmarshal gives.

// CallRequestDecoder decodes CallRequests into messages it keeps for the
// next request. A decoded request aliases its input (the Variants' Value
// bytes point into it) and is overwritten by the next Decode.
type CallRequestDecoder struct {
	req     CallRequest
	args    []*Argument   // the decoded Arguments; its backing array is reused
	kwargs  []*KwArgument // as args
	argPool []*argumentSlot
	kwPool  []*kwArgumentSlot
	strs    []string // strings seen, so that a repeated name costs no allocation
}

// argumentSlot holds a reusable Argument and the Variant it may point to.
type argumentSlot struct {
	arg  Argument
	data Variant
}

type kwArgumentSlot struct {
	kw   KwArgument
	data Variant
}

// maxInterned bounds CallRequestDecoder.strs: a host sees a handful of
// method names and keywords, and hostile input must not grow the list.
const maxInterned = 16

// Decode decodes b. The result is valid until the next Decode.
func (d *CallRequestDecoder) Decode(b []byte) (*CallRequest, error) {
	return orUnmarshal(d.decode(b), b, &d.req)
}

// maxKeptArguments bounds the reusable Arguments (and KwArguments) a
// decoder keeps after a request with many.
const maxKeptArguments = 64

// Release drops the decoder's references into the last input, and the
// reusable messages past maxKeptArguments, so that a decoder kept for the
// next request pins neither a large request nor the messages of one with
// thousands of arguments.
func (d *CallRequestDecoder) Release() {
	d.req = CallRequest{}
	d.args, d.argPool = keepArguments(d.args, d.argPool)
	d.kwargs, d.kwPool = keepArguments(d.kwargs, d.kwPool)
	for _, slot := range d.argPool {
		slot.data.Value = nil
	}
	for _, slot := range d.kwPool {
		slot.data.Value = nil
	}
}

// keepArguments empties list (which points into pool) and trims both to
// maxKeptArguments.
func keepArguments[M any, S any](list []*M, pool []*S) ([]*M, []*S) {
	if cap(list) > maxKeptArguments {
		list = nil
	}
	if len(pool) > maxKeptArguments {
		pool = slices.Clone(pool[:maxKeptArguments])
	}
	return list[:0], pool
}

// orUnmarshal returns m when the fast path decoded b into it, else what
// proto.Unmarshal makes of b in m (it resets m first, so nothing the fast
// path left stays).
func orUnmarshal[M proto.Message](decoded bool, b []byte, m M) (M, error) {
	if !decoded {
		if err := proto.Unmarshal(b, m); err != nil {
			var none M
			return none, err
		}
	}
	return m, nil
}

func (d *CallRequestDecoder) decode(b []byte) bool {
	d.req = CallRequest{}
	args, kwargs := d.args[:0], d.kwargs[:0]
	ok := eachField(b, func(f field) bool {
		if f.typ != protowire.BytesType {
			return false
		}
		switch f.num {
		case 1:
			if !utf8.Valid(f.bytes) {
				return false
			}
			d.req.MethodName = d.intern(f.bytes)
		case 2:
			slot := d.argumentSlot(len(args))
			if !decodeArgument(f.bytes, &slot.arg, &slot.data) {
				return false
			}
			args = append(args, &slot.arg)
		case 3:
			slot := d.kwArgumentSlot(len(kwargs))
			if !d.decodeKwArgument(f.bytes, &slot.kw, &slot.data) {
				return false
			}
			kwargs = append(kwargs, &slot.kw)
		default:
			return false
		}
		return true
	})
	if !ok {
		return false
	}
	d.args, d.kwargs = args, kwargs
	// proto.Unmarshal leaves an absent repeated field nil.
	if len(args) > 0 {
		d.req.MethodArguments = args
	}
	if len(kwargs) > 0 {
		d.req.MethodKwArguments = kwargs
	}
	return true
}

// argumentSlot returns the i-th reusable Argument, making it if needed.
func (d *CallRequestDecoder) argumentSlot(i int) *argumentSlot {
	if i == len(d.argPool) {
		d.argPool = append(d.argPool, new(argumentSlot))
	}
	return d.argPool[i]
}

func (d *CallRequestDecoder) kwArgumentSlot(i int) *kwArgumentSlot {
	if i == len(d.kwPool) {
		d.kwPool = append(d.kwPool, new(kwArgumentSlot))
	}
	return d.kwPool[i]
}

// intern returns b as a string, reusing an earlier equal one.
func (d *CallRequestDecoder) intern(b []byte) string {
	for _, s := range d.strs {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	if len(d.strs) < maxInterned {
		d.strs = append(d.strs, s)
	}
	return s
}

// decodeArgument decodes an Argument into a, pointing its Data to data if
// it has one.
func decodeArgument(b []byte, a *Argument, data *Variant) bool {
	*a = Argument{}
	return eachField(b, func(f field) bool {
		switch {
		case f.is(1, protowire.VarintType):
			a.Position = uint32(f.varint)
		// A second occurrence of a message field merges into the first:
		// that is proto.Unmarshal's business.
		case f.is(2, protowire.BytesType) && a.Data == nil && decodeVariant(f.bytes, data):
			a.Data = data
		default:
			return false
		}
		return true
	})
}

// decodeKwArgument is decodeArgument for keyword arguments.
func (d *CallRequestDecoder) decodeKwArgument(b []byte, kw *KwArgument, data *Variant) bool {
	*kw = KwArgument{}
	return eachField(b, func(f field) bool {
		switch {
		case f.is(1, protowire.BytesType) && utf8.Valid(f.bytes):
			kw.Keyword = d.intern(f.bytes)
		case f.is(2, protowire.BytesType) && kw.Data == nil && decodeVariant(f.bytes, data):
			kw.Data = data
		default:
			return false
		}
		return true
	})
}

// decodeVariant decodes a Variant into v; Value aliases b.
func decodeVariant(b []byte, v *Variant) bool {
	*v = Variant{}
	return eachField(b, func(f field) bool {
		switch {
		case f.is(2, protowire.VarintType):
			v.Type = VariantType(int32(f.varint))
		case f.is(3, protowire.BytesType):
			v.Value = nil // proto.Unmarshal's value for empty bytes
			if len(f.bytes) > 0 {
				v.Value = f.bytes[:len(f.bytes):len(f.bytes)]
			}
		default:
			return false
		}
		return true
	})
}

// field is one field read by read.
type field struct {
	num    protowire.Number
	typ    protowire.Type
	varint uint64 // the value of a varint
	bytes  []byte // the value of a length-delimited field
}

// eachField reads the fields of the message b in order, giving each to accept, and
// reports whether b was read to its end with every field accepted: a decoder takes a
// message only when it knows each of its fields, and leaves anything else to
// proto.Unmarshal.
func eachField(b []byte, accept func(f field) bool) bool {
	for len(b) > 0 {
		var f field
		n := f.read(b)
		if n < 0 || !accept(f) {
			return false
		}
		b = b[n:]
	}
	return true
}

func (f *field) is(num protowire.Number, typ protowire.Type) bool {
	return f.num == num && f.typ == typ
}

// read reads a varint or length-delimited field into f and reports the
// length read, negative for an error or another wire type. (Filling f in
// place rather than returning it halves a request's decoding time.)
func (f *field) read(b []byte) int {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return -1
	}
	f.num, f.typ = num, typ
	var m int
	switch typ {
	case protowire.VarintType:
		f.varint, m = protowire.ConsumeVarint(b[n:])
	case protowire.BytesType:
		f.bytes, m = protowire.ConsumeBytes(b[n:])
	default:
		return -1
	}
	if m < 0 {
		return -1
	}
	return n + m
}

// CallResponseDecoder decodes CallResponses into messages it keeps for the
// next answer, without allocating when the status code is a known one: the
// Variant's Value aliases the input. A decoded answer is overwritten by the
// next Decode.
type CallResponseDecoder struct {
	resp    CallResponse
	status  Status
	variant Variant
}

// Decode decodes b. The result is valid until the next Decode.
func (d *CallResponseDecoder) Decode(b []byte) (*CallResponse, error) {
	return orUnmarshal(d.decode(b), b, &d.resp)
}

// Release drops the decoder's references into the last input, so that a
// decoder kept between calls does not pin a large answer.
func (d *CallResponseDecoder) Release() {
	*d = CallResponseDecoder{}
}

func (d *CallResponseDecoder) decode(b []byte) bool {
	d.resp = CallResponse{}
	return eachField(b, func(f field) bool {
		switch {
		case f.is(1, protowire.BytesType) && d.resp.Status == nil && decodeStatus(f.bytes, &d.status):
			d.resp.Status = &d.status
		case f.is(2, protowire.BytesType) && d.resp.MethodResponse == nil && decodeVariant(f.bytes, &d.variant):
			d.resp.MethodResponse = &d.variant
		default:
			return false
		}
		return true
	})
}

// statusCodes are the codes model runners answer with, so that decoding
// one costs no allocation.
var statusCodes = [...]string{"BAD_IMPLEMENTATION", "FAILED_PRECONDITION", "INVALID_ARGUMENT", "MODEL_FAILED", "SETUP_FAILED", "SUCCESS"}

func decodeStatus(b []byte, st *Status) bool {
	*st = Status{}
	return eachField(b, func(f field) bool {
		if f.typ != protowire.BytesType || !utf8.Valid(f.bytes) {
			return false
		}
		switch f.num {
		case 1:
			st.Code = internStatusCode(f.bytes)
		case 2:
			st.Message = string(f.bytes)
		default:
			return false
		}
		return true
	})
}

func internStatusCode(b []byte) string {
	for _, c := range statusCodes {
		if c == string(b) {
			return c
		}
	}
	return string(b)
}

// MarshalCallResponse encodes a CallResponse of status and v (either may be
// nil) exactly as proto.Marshal does, in one allocation and without
// reflection.
func MarshalCallResponse(status *Status, v *Variant) ([]byte, error) {
	if !plainStatus(status) || (v != nil && len(v.unknownFields) > 0) {
		// Unknown fields, or invalid UTF-8 that proto.Marshal refuses.
		return proto.Marshal(&CallResponse{Status: status, MethodResponse: v})
	}
	size := 0
	if status != nil {
		size += 1 + protowire.SizeBytes(statusSize(status))
	}
	if v != nil {
		size += 1 + protowire.SizeBytes(variantSize(v))
	}
	b := make([]byte, 0, size)
	if status != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(statusSize(status)))
		b = appendStringField(b, 1, status.Code)
		b = appendStringField(b, 2, status.Message)
	}
	if v != nil {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(variantSize(v)))
		if v.Type != 0 {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(int64(v.Type)))
		}
		b = appendStringField(b, 3, v.Value)
	}
	return b, nil
}

// plainStatus reports whether status is nil or has only valid UTF-8 and no
// unknown fields.
func plainStatus(status *Status) bool {
	return status == nil || (len(status.unknownFields) == 0 && utf8.ValidString(status.Code) && utf8.ValidString(status.Message))
}

func statusSize(st *Status) int {
	return stringFieldSize(st.Code) + stringFieldSize(st.Message)
}

func variantSize(v *Variant) int {
	n := stringFieldSize(v.Value)
	if v.Type != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(v.Type)))
	}
	return n
}

// stringFieldSize is the size of a proto3 string or bytes field with a
// one-byte tag; empty, it is not written.
func stringFieldSize[S string | []byte](s S) int {
	if len(s) == 0 {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

func appendStringField[S string | []byte](b []byte, num protowire.Number, s S) []byte {
	if len(s) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(s)))
	return append(b, s...)
}
