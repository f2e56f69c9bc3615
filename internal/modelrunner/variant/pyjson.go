package variant

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting so hostile input cannot exhaust the stack. It is
// the same limit encoding/json uses.
const maxJSONDepth = 10000

// ParseJSON parses JSON as Python's json module writes it. Standard JSON gives
// exactly what json.Unmarshal into `any` gives; in addition the bare tokens
// NaN, Infinity and -Infinity become the matching float64 values, and numbers
// too large for float64 become ±Inf (as in Python) instead of an error.
func ParseJSON(b []byte) (any, error) {
	if obj, ok := parseFlatObject(b); ok {
		return obj, nil
	}
	var v any
	if err := json.Unmarshal(b, &v); err == nil {
		return v, nil
	}
	// The slow path only runs for input encoding/json refused: Python's
	// non-standard tokens, or plain garbage.
	if !utf8.Valid(b) {
		return nil, errors.New("invalid UTF-8")
	}
	p := jsonParser{data: b}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected data after top-level value")
	}
	return v, nil
}

// parseFlatObject parses the shape of almost every model answer, an object
// of numbers ({"value": 0.5}), without encoding/json's validation pass,
// decode state and reflection: a node reads a hundred of them per fan-out.
// It takes an object whose keys are plain ASCII and whose values are
// numbers, plain ASCII strings, true, false or null, and gives what
// json.Unmarshal gives; it reports false for anything else, which the
// general path then parses.
func parseFlatObject(b []byte) (map[string]any, bool) {
	p := jsonParser{data: b}
	p.skipSpace()
	if !p.literal("{") {
		return nil, false
	}
	obj := map[string]any{}
	p.skipSpace()
	if p.literal("}") {
		return obj, p.atEnd()
	}
	for {
		p.skipSpace()
		key, ok := p.plainString()
		if !ok {
			return nil, false
		}
		p.skipSpace()
		if !p.literal(":") {
			return nil, false
		}
		p.skipSpace()
		v, ok := p.flatValue()
		if !ok {
			return nil, false
		}
		obj[key] = v
		p.skipSpace()
		switch {
		case p.literal(","):
		case p.literal("}"):
			return obj, p.atEnd()
		default:
			return nil, false
		}
	}
}

// atEnd skips trailing space and reports whether nothing else follows.
func (p *jsonParser) atEnd() bool {
	p.skipSpace()
	return p.pos == len(p.data)
}

// flatValue parses a number, a plain string, true, false or null.
func (p *jsonParser) flatValue() (any, bool) {
	if p.pos >= len(p.data) {
		return nil, false
	}
	switch c := p.data[p.pos]; {
	case c == '"':
		return p.plainString()
	case c == '-' || (c >= '0' && c <= '9'):
		end, ok := NumberEnd(p.data, p.pos)
		if !ok {
			return nil, false
		}
		// Out of range is an error for encoding/json: the general path
		// decides what it becomes.
		f, err := strconv.ParseFloat(string(p.data[p.pos:end]), 64)
		p.pos = end
		return f, err == nil
	case p.literal("true"):
		return true, true
	case p.literal("false"):
		return false, true
	case p.literal("null"):
		return nil, true
	}
	return nil, false
}

// plainString parses a string of printable ASCII without escapes, which
// decodes to its bytes.
func (p *jsonParser) plainString() (string, bool) {
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", false
	}
	for i := p.pos + 1; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			s := string(p.data[p.pos+1 : i])
			p.pos = i + 1
			return s, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
	}
	return "", false
}

type jsonParser struct {
	data []byte
	pos  int
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) literal(word string) bool {
	if len(p.data)-p.pos >= len(word) && string(p.data[p.pos:p.pos+len(word)]) == word {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nesting too deep")
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		if p.literal("-Infinity") {
			return math.Inf(-1), nil
		}
		return p.number()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	case p.literal("NaN"):
		return math.NaN(), nil
	case p.literal("Infinity"):
		return math.Inf(1), nil
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *jsonParser) object(depth int) (any, error) {
	p.pos++ // '{'
	obj := map[string]any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return obj, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected object key")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return obj, nil
		default:
			return nil, p.errorf("expected ',' or '}'")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.pos++ // '['
	arr := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return arr, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return arr, nil
		default:
			return nil, p.errorf("expected ',' or ']'")
		}
	}
}

// str finds the end of a string token and lets encoding/json decode it, so
// escapes and invalid surrogates are handled exactly like the fast path.
func (p *jsonParser) str() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == '\\':
			p.pos += 2
		case c == '"':
			p.pos++
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				p.pos = start
				return "", p.errorf("bad string: %v", err)
			}
			return s, nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		default:
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

// number scans the JSON number grammar strictly, then converts. Overflow
// yields ±Inf as Python's float() does.
func (p *jsonParser) number() (any, error) {
	end, ok := NumberEnd(p.data, p.pos)
	if !ok {
		return nil, p.errorf("bad number")
	}
	start := p.pos
	p.pos = end
	f, err := strconv.ParseFloat(string(p.data[start:end]), 64)
	if err != nil {
		var numErr *strconv.NumError
		if !errors.As(err, &numErr) || !errors.Is(numErr.Err, strconv.ErrRange) {
			return nil, p.errorf("bad number: %v", err)
		}
		// ParseFloat already returned ±Inf (overflow) or ±0 (underflow).
	}
	return f, nil
}

// NumberEnd returns where the JSON number starting at b[pos] ends, under
// JSON's strict grammar (no leading zeros, no bare '.', no '+' sign), and
// false when no number starts there.
func NumberEnd(b []byte, pos int) (int, bool) {
	digits := func() int {
		n := 0
		for pos < len(b) && b[pos] >= '0' && b[pos] <= '9' {
			pos++
			n++
		}
		return n
	}
	if pos < len(b) && b[pos] == '-' {
		pos++
	}
	switch {
	case pos < len(b) && b[pos] == '0':
		pos++
	case digits() == 0:
		return pos, false
	}
	if pos < len(b) && b[pos] == '.' {
		pos++
		if digits() == 0 {
			return pos, false
		}
	}
	if pos < len(b) && (b[pos] == 'e' || b[pos] == 'E') {
		pos++
		if pos < len(b) && (b[pos] == '+' || b[pos] == '-') {
			pos++
		}
		if digits() == 0 {
			return pos, false
		}
	}
	return pos, true
}
