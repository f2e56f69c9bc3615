package modelhost

import (
	"bytes"
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
// UTF-8, a ts that is neither a number, a string nor null, invalid JSON…) so
// the caller can take the generic path.
func scanFeed(data []byte) (symbol string, points []point, ok bool) {
	// Every row is an object: their count bounds the points, so the rows are
	// read into one allocation.
	s := feedScanner{data: data, rowsCap: bytes.Count(data, []byte("{"))}
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
}

// member moves to the next member of an object whose '{' is consumed and
// reads its key and colon; done reports the closing '}'.
func (s *feedScanner) member(first bool) (key []byte, done bool, err error) {
	s.space()
	if s.consume('}') {
		return nil, true, nil
	}
	if !first {
		if !s.consume(',') {
			return nil, false, errGeneric
		}
		s.space()
	}
	key, err = s.plainString()
	if err != nil {
		return nil, false, err
	}
	s.space()
	if !s.consume(':') {
		return nil, false, errGeneric
	}
	s.space()
	return key, false, nil
}

// element moves to the next element of an array whose '[' is consumed; done
// reports the closing ']'.
func (s *feedScanner) element(first bool) (done bool, err error) {
	s.space()
	if s.consume(']') {
		return true, nil
	}
	if !first {
		if !s.consume(',') {
			return false, errGeneric
		}
		s.space()
	}
	return false, nil
}

// rows reads the value of candles_1m or ticks: an array of rows, keeping the
// objects whose field is a number. Anything but an array holds no rows.
func (s *feedScanner) rows(field string) ([]point, error) {
	if !s.consume('[') {
		return nil, s.skip(1)
	}
	out := make([]point, 0, s.rowsCap)
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
		var p point
		var hasValue bool
		for first := true; ; first = false {
			key, done, err := s.member(first)
			if err != nil {
				return nil, err
			}
			if done {
				break
			}
			switch { // not switch string(key): a case that is not a constant makes it copy the key
			case string(key) == field:
				p.close, hasValue, err = s.keptNumber()
			case string(key) == "ts":
				p.ts, err = s.keptTS()
			default:
				err = s.skip(3)
			}
			if err != nil {
				return nil, err
			}
		}
		if hasValue {
			out = append(out, p)
		}
	}
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

// keptNumber reads a value kept as a number; ok is false for other values.
func (s *feedScanner) keptNumber() (f float64, ok bool, err error) {
	if s.pos < len(s.data) && (s.data[s.pos] == '-' || (s.data[s.pos] >= '0' && s.data[s.pos] <= '9')) {
		f, err = s.float()
		return f, err == nil, err
	}
	return 0, false, s.skip(3)
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
		_, _, err := s.number()
		return err // a skipped number is only checked, not converted
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
	if !s.consume('"') {
		return nil, errGeneric
	}
	start := s.pos
	for i := start; i < len(s.data); i++ {
		c := s.data[i]
		if !stringStop[c] {
			continue
		}
		switch {
		case c == '"':
			s.pos = i + 1
			return s.data[start:i], nil
		case c < utf8.RuneSelf: // an escape or a control character
			return nil, errGeneric
		}
		r, size := utf8.DecodeRune(s.data[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, errGeneric
		}
		i += size - 1
	}
	return nil, errGeneric
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

// number reads a number under JSON's strict grammar and returns its digits
// and text.
func (s *feedScanner) number() (decimal, []byte, error) {
	d, end, ok := scanNumber(s.data, s.pos)
	if !ok {
		return decimal{}, nil, errGeneric
	}
	text := s.data[s.pos:end]
	s.pos = end
	return d, text, nil
}

// float reads a number and converts it as encoding/json does; an overflow
// gives ±Inf, as the generic decoder's Python-compatible path does.
func (s *feedScanner) float() (float64, error) {
	d, text, err := s.number()
	if err != nil {
		return 0, err
	}
	return d.float(text)
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

func (s *feedScanner) space() {
	for s.pos < len(s.data) && s.data[s.pos] <= ' ' {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}
