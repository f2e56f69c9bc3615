package modelhost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"unicode/utf8"
)

// maxScanDepth bounds the nesting scanFeed follows; deeper documents take the
// generic path, which has its own limit.
const maxScanDepth = 64

// errGeneric makes scanFeed hand the document to the generic decoder.
var errGeneric = errors.New("not for the fast path")

// scanFeed reads a feed_update document in one pass, without reflection or
// maps: the symbol (or subject) and the (ts, close) of candles_1m rows and the
// (ts, price) of ticks rows that hold numbers. It gives exactly what the
// generic decoder and feedUpdate's map path give, and reports false for
// anything it does not read that way (Python's NaN, escaped strings, invalid
// UTF-8, invalid JSON…) so the caller can take the generic path. The points
// are read into buf when it has room.
func scanFeed(data []byte, buf []point) (symbol string, points []point, ok bool) {
	// Every row is an object: their count bounds the points, so the rows are
	// read into one allocation, or into buf when it has room.
	s := feedScanner{data: data, rowsCap: bytes.Count(data, []byte("{")), buf: buf}
	var candles, ticks []point
	var subject string
	s.space()
	if !s.consume('{') {
		return "", nil, false
	}
	for first := true; ; first = false {
		key, done, err := s.member(first)
		if err != nil {
			return "", nil, false
		}
		if done {
			break
		}
		// A repeated key keeps its last value, as in a decoded map.
		switch string(key) {
		case "candles_1m":
			candles, err = s.rows("close")
		case "subject":
			subject, err = s.keptString()
		case "symbol":
			symbol, err = s.keptString()
		case "ticks":
			ticks, err = s.rows("price")
		default:
			err = s.skip(1)
		}
		if err != nil {
			return "", nil, false
		}
	}
	s.space()
	if s.pos != len(s.data) {
		return "", nil, false
	}
	switch {
	case len(ticks) == 0:
		points = candles
	case len(candles) == 0:
		points = ticks
	default:
		points = append(slices.Clip(candles), ticks...)
	}
	if symbol == "" {
		symbol = subject
	}
	return symbol, points, true
}

type feedScanner struct {
	data    []byte
	pos     int
	rowsCap int
	buf     []point // for the first rows read
}

// member moves to the next member of an object whose '{' is consumed and
// reads its key and colon; done reports the closing '}'.
func (s *feedScanner) member(first bool) (key []byte, done bool, err error) {
	data, pos := s.data, skipSpace(s.data, s.pos)
	if pos < len(data) && data[pos] == '}' {
		s.pos = pos + 1
		return nil, true, nil
	}
	if !first {
		if pos >= len(data) || data[pos] != ',' {
			return nil, false, errGeneric
		}
		pos = skipSpace(data, pos+1)
	}
	key, pos, ok := plainString(data, pos)
	if !ok {
		return nil, false, errGeneric
	}
	pos = skipSpace(data, pos)
	if pos >= len(data) || data[pos] != ':' {
		return nil, false, errGeneric
	}
	s.pos = skipSpace(data, pos+1)
	return key, false, nil
}

// element moves to the next element of an array whose '[' is consumed; done
// reports the closing ']'.
func (s *feedScanner) element(first bool) (done bool, err error) {
	data, pos := s.data, skipSpace(s.data, s.pos)
	if pos < len(data) && data[pos] == ']' {
		s.pos = pos + 1
		return true, nil
	}
	if !first {
		if pos >= len(data) || data[pos] != ',' {
			return false, errGeneric
		}
		pos = skipSpace(data, pos+1)
	}
	s.pos = pos
	return false, nil
}

// rows reads the value of candles_1m or ticks: an array of rows, keeping the
// objects whose field is a number. Anything but an array holds no rows.
func (s *feedScanner) rows(field string) ([]point, error) {
	if !s.consume('[') {
		return nil, s.skip(1)
	}
	out := s.buf[:0]
	if s.buf = nil; cap(out) < s.rowsCap {
		out = make([]point, 0, s.rowsCap)
	}
	var keys rowKeys
	for first := true; ; first = false {
		done, err := s.element(first)
		if err != nil {
			return nil, err
		}
		if done {
			return out, nil
		}
		if !s.consume('{') {
			if err := s.skip(2); err != nil {
				return nil, err
			}
			continue
		}
		// Read in place: returning a point and copying it into out cost as
		// much as reading it.
		out = append(out, point{})
		hasValue, err := s.row(field, &keys, &out[len(out)-1])
		if err != nil {
			return nil, err
		}
		if !hasValue {
			out = out[:len(out)-1]
		}
	}
}

// row reads the members of a row whose '{' is consumed: the ts, and the
// number under field (hasValue is false when the last value under field is
// not a number). A row is mostly numbers, so they are read here, and only
// converted when kept.
func (s *feedScanner) row(field string, keys *rowKeys, p *point) (hasValue bool, err error) {
	data, pos := s.data, s.pos
	for n := 0; ; n++ {
		pos = skipSpace(data, pos)
		if pos >= len(data) {
			return hasValue, errGeneric
		}
		if data[pos] == '}' {
			s.pos = pos + 1
			return hasValue, nil
		}
		start := pos
		kind, end := keys.match(n, data, pos)
		if end == pos {
			if n > 0 {
				if data[pos] != ',' {
					return hasValue, errGeneric
				}
				pos = skipSpace(data, pos+1)
			}
			kind, end, err = readRowKey(data, pos, field)
			if err != nil {
				return hasValue, err
			}
			keys.remember(n, data, start, end, kind)
		}
		pos = skipSpace(data, end)
		// The usual value, digits and perhaps a fraction, is checked here
		// (numberEnd is too large to inline, and calling it for every member
		// cost 6 % of the scan); anything else is numberEnd's.
		end, isNumber := pos, false
		if pos < len(data) && data[pos]-'1' <= 8 {
			end = digitsEnd(data, pos+1)
			if end < len(data) && data[end] == '.' {
				end = digitsEnd(data, end+1)
			}
			isNumber = end < len(data) && data[end-1] != '.' && data[end] != 'e' && data[end] != 'E'
		}
		if !isNumber {
			end, isNumber = numberEnd(data, pos)
		}
		switch {
		case isNumber && kind == keyValue:
			p.close, err = parseNumber(data[pos:end])
			hasValue = true
			pos = end
		case isNumber && kind == keyTS:
			var ts float64
			ts, err = parseNumber(data[pos:end])
			p.ts = numberTS(ts)
			pos = end
		case isNumber:
			pos = end // a skipped number is only checked, not converted
		case kind == keyTS:
			s.pos = pos
			p.ts, err = s.keptTS()
			pos = s.pos
		default:
			if kind == keyValue {
				p.close, hasValue = 0, false
			}
			s.pos = pos
			err = s.skip(3)
			pos = s.pos
		}
		if err != nil {
			return hasValue, err
		}
	}
}

// readRowKey reads a row member's key and colon at data[pos:]; end is where
// the colon ends.
func readRowKey(data []byte, pos int, field string) (kind keyKind, end int, err error) {
	key, end, ok := plainString(data, pos)
	if !ok {
		return 0, end, errGeneric
	}
	end = skipSpace(data, end)
	if end >= len(data) || data[end] != ':' {
		return 0, end, errGeneric
	}
	// Not switch string(key): a case that is not a constant makes it copy
	// the key.
	switch {
	case string(key) == field:
		return keyValue, end + 1, nil
	case string(key) == "ts":
		return keyTS, end + 1, nil
	}
	return keyOther, end + 1, nil
}

type keyKind uint8

const (
	keyOther keyKind = iota
	keyTS
	keyValue
)

// rowKeys remembers the keys of the last row read. Rows repeat their keys in
// the same order, so a member's key is most often the bytes the last row had
// at the same place, from the comma before it (but for the first) to the
// colon after it: comparing two words with them checks the comma, the key,
// its quotes and the colon at once, and where they end is known before
// their bytes are read.
type rowKeys [8]struct {
	lo, hi         uint64 // the key's bytes, zero past its end
	loMask, hiMask uint64
	len            int // 0 for none: not seen, or too long to compare so
	kind           keyKind
}

// match returns the kind of the key at data[pos:] (with the comma before
// it) and where its colon ends when it is the n-th key of the last row, else
// end == pos.
func (keys *rowKeys) match(n int, data []byte, pos int) (kind keyKind, end int) {
	if n >= len(keys) || pos+16 > len(data) {
		return 0, pos
	}
	k := &keys[n]
	lo, hi := binary.LittleEndian.Uint64(data[pos:]), binary.LittleEndian.Uint64(data[pos+8:])
	if k.len == 0 || lo&k.loMask != k.lo || hi&k.hiMask != k.hi {
		return 0, pos
	}
	return k.kind, pos + k.len
}

// remember keeps the key at data[pos:end] (with the comma before it) as the
// n-th of the row.
func (keys *rowKeys) remember(n int, data []byte, pos, end int, kind keyKind) {
	if n >= len(keys) {
		return
	}
	k := &keys[n]
	k.len = 0
	if length := end - pos; length <= 16 && pos+16 <= len(data) {
		k.loMask, k.hiMask = wordMask(length), wordMask(length-8)
		k.lo = binary.LittleEndian.Uint64(data[pos:]) & k.loMask
		k.hi = binary.LittleEndian.Uint64(data[pos+8:]) & k.hiMask
		k.len, k.kind = length, kind
	}
}

// wordMask keeps the first n bytes of a little-endian word.
func wordMask(n int) uint64 {
	switch {
	case n <= 0:
		return 0
	case n >= 8:
		return ^uint64(0)
	}
	return 1<<(8*n) - 1
}

// keptString reads a value kept as a string: a string gives itself, anything
// else "" (a decoded map's value would fail the string assertion).
func (s *feedScanner) keptString() (string, error) {
	if s.pos < len(s.data) && s.data[s.pos] == '"' {
		b, err := s.plainString()
		return string(b), err
	}
	return "", s.skip(1)
}

// keptTS reads a ts as tsOf reads the generic decoder's value: a number, a
// string, or any other value, which merge treats alike.
func (s *feedScanner) keptTS() (timestamp, error) {
	if s.pos >= len(s.data) {
		return timestamp{}, errGeneric
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		str, err := s.keptString()
		return stringTS(str), err
	case c == '-' || (c >= '0' && c <= '9'):
		f, err := s.float()
		return numberTS(f), err
	}
	return timestamp{}, s.skip(3)
}

// skip reads over any value.
func (s *feedScanner) skip(depth int) error {
	if depth > maxScanDepth || s.pos >= len(s.data) {
		return errGeneric
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		s.pos++
		for first := true; ; first = false {
			_, done, err := s.member(first)
			if err != nil || done {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '[':
		s.pos++
		for first := true; ; first = false {
			done, err := s.element(first)
			if err != nil || done {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case c == '"':
		_, err := s.plainString()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		end, ok := numberEnd(s.data, s.pos)
		if !ok {
			return errGeneric
		}
		s.pos = end // a skipped number is only checked, not converted
		return nil
	case s.literal("null"), s.literal("true"), s.literal("false"):
		return nil
	}
	return errGeneric
}

// plainString reads a string without escapes and returns its bytes; an
// escape, a control character, invalid UTF-8 or an unterminated string is for
// the generic path.
//
// Outside strings the grammar only admits ASCII, so checking the strings'
// UTF-8 checks the whole document's: the generic decoder replaces invalid
// UTF-8 in strings, or refuses the document when it also holds a number too
// large for encoding/json.
func (s *feedScanner) plainString() ([]byte, error) {
	str, end, ok := plainString(s.data, s.pos)
	if !ok {
		return nil, errGeneric
	}
	s.pos = end
	return str, nil
}

// plainString reads the string at data[pos:] as (*feedScanner).plainString
// does; end is where it ends.
func plainString(data []byte, pos int) (str []byte, end int, ok bool) {
	if pos >= len(data) || data[pos] != '"' {
		return nil, pos, false
	}
	start := pos + 1
	for i := start; i < len(data); i++ {
		c := data[i]
		if !stringStop[c] {
			continue
		}
		switch {
		case c == '"':
			return data[start:i], i + 1, true
		case c < utf8.RuneSelf: // an escape or a control character
			return nil, i, false
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, i, false
		}
		i += size - 1
	}
	return nil, len(data), false
}

// stringStop marks the bytes plainString looks at: the closing quote, what
// the generic path decodes (escapes, control characters) and the first byte
// of a non-ASCII character, to check its UTF-8.
var stringStop = func() (stop [256]bool) {
	for c := range 0x20 {
		stop[c] = true
	}
	for c := utf8.RuneSelf; c < 256; c++ {
		stop[c] = true
	}
	stop['"'], stop['\\'] = true, true
	return stop
}()

// float reads a number and converts it as encoding/json does; an overflow
// gives ±Inf, as the generic decoder's Python-compatible path does.
func (s *feedScanner) float() (float64, error) {
	end, ok := numberEnd(s.data, s.pos)
	if !ok {
		return 0, errGeneric
	}
	text := s.data[s.pos:end]
	s.pos = end
	return parseNumber(text)
}

func (s *feedScanner) consume(c byte) bool {
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *feedScanner) literal(word string) bool {
	if len(s.data)-s.pos >= len(word) && string(s.data[s.pos:s.pos+len(word)]) == word {
		s.pos += len(word)
		return true
	}
	return false
}

func (s *feedScanner) space() { s.pos = skipSpace(s.data, s.pos) }

// skipSpace returns where the JSON whitespace at data[pos:] ends.
func skipSpace(data []byte, pos int) int {
	for pos < len(data) && data[pos] <= ' ' {
		switch data[pos] {
		case ' ', '\t', '\n', '\r':
			pos++
		default:
			return pos
		}
	}
	return pos
}
