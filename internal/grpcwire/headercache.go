package grpcwire

import (
	"bytes"
	"time"

	"golang.org/x/net/http2/hpack"
)

// srvHeaderCache is the last request header block a connection decoded and
// what it said, when the block only referred to the HPACK table. A client
// sends the same block call after call (same method, authority, timeout),
// and decoding such a block leaves the table as it is: the same bytes then
// mean the same fields, and decoding them again (a few per cent of a small
// call's CPU) is skipped. Decoding any other block invalidates it.
type srvHeaderCache struct {
	valid   bool
	block   []byte
	path    string
	post    bool
	ctOK    bool
	timeout time.Duration // negative: no grpc-timeout
	md      []hpack.HeaderField
	handler Handler // the path's; the method table does not change once serving
}

// srvMaxCachedBlock bounds the cached block: request blocks of indexed
// fields are a few bytes.
const srvMaxCachedBlock = 256

// save records the block just decoded for st, if it only refers to the
// table.
func (h *srvHeaderCache) save(block []byte, st *srvStream, timeout time.Duration, handler Handler) {
	if len(block) > srvMaxCachedBlock || !onlyIndexed(block) {
		return
	}
	h.valid = true
	h.block = append(h.block[:0], block...)
	h.path, h.post, h.ctOK, h.timeout, h.handler = st.path, st.post, st.ctOK, timeout, handler
	h.md = append(h.md[:0], st.md...)
}

// apply sets st's request headers from the cache when block is the cached
// one, and reports whether it was.
func (h *srvHeaderCache) apply(block []byte, st *srvStream) bool {
	if !h.valid || !bytes.Equal(block, h.block) {
		return false
	}
	st.path, st.post, st.ctOK, st.handler = h.path, h.post, h.ctOK, h.handler
	if h.timeout >= 0 {
		st.deadline = time.Now().Add(h.timeout)
	}
	st.md = append(st.md, h.md...)
	return true
}
