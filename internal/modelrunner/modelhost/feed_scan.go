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
		p, hasValue, err := s.row(field)
		if err != nil {
			return nil, err
		}
		if hasValue {
			out = append(out, p)
		}
	}
}

// row reads the members of a row whose '{' is consumed: the ts, and the
// number under field (hasValue is false when the last value under field is
// not a number). A row is mostly numbers, so they are read here, and only
// converted when kept.
func (s *feedScanner) row(field string) (p point, hasValue bool, err error) {
	for first := true; ; first = false {
		key, done, err := s.member(first)
		if err != nil || done {
			return p, hasValue, err
		}
		// Not switch string(key): a case that is not a constant makes it
		// copy the key.
		isValue, isTS := string(key) == field, string(key) == "ts"
		end, isNumber := numberEnd(s.data, s.pos)
		switch {
		case isNumber && (isValue || isTS):
			var f float64
			if f, err = parseNumber(s.data[s.pos:end]); isValue {
				p.close, hasValue = f, true
			} else {
				p.ts = numberTS(f)
			}
			s.pos = end
		case isNumber:
			s.pos = end // a skipped number is only checked, not converted
		case isTS:
			p.ts, err = s.keptTS()
		default:
			if isValue {
				p.close, hasValue = 0, false
			}
			err = s.skip(3)
		}
		if err != nil {
			return p, hasValue, err
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
