package customsql

import (
	"fmt"
	"strconv"
	"strings"
)

// piece is one run of a scanned query: either verbatim SQL text or one use of a named
// parameter. Printing the text pieces as they are and the parameter pieces as "@"+name gives
// back the scanned source byte for byte, which the fuzz test checks.
type piece struct {
	line  int    // line of the piece's first byte, 1-based
	name  string // parameter name, for parameter pieces
	param bool
	text  string // verbatim SQL, for text pieces
}

// scanned is what the loader needs to know about a query besides its pieces.
type scanned struct {
	// extraStatementLine is the line where a second statement starts, 0 if there is none.
	extraStatementLine int
	// hasCode is false when the query is only whitespace, comments and semicolons.
	hasCode bool
	// positionalLines are the lines of $1-style placeholders written in the file.
	positionalLines []int
	pieces          []piece
}

// scanError is a lexical error (an unterminated literal or comment) at a line.
type scanError struct {
	line int
	msg  string
}

func (e *scanError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

// isIdentChar follows Postgres: identifiers may contain digits and dollar signs after the
// first character.
func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// scan splits a query into text and @name parameter pieces with a small Postgres lexer. It
// has to understand enough SQL not to see parameters where there are none: inside string
// literals ('…', E'…' with backslash escapes, $tag$…$tag$), quoted identifiers, line and
// nested block comments, and in the operators @>, <@ and @@. An @ directly after an
// identifier character, "<" or "@" is an operator, never a parameter; "x < @y" needs the
// space that Postgres itself needs to tell "<" from "<@".
func scan(src string) (*scanned, error) {
	out := &scanned{}
	var (
		line       = 1
		textStart  = 0
		textLine   = 1
		semicolons = 0
		n          = len(src)
	)
	code := func(at int) {
		if semicolons > 0 && out.extraStatementLine == 0 {
			out.extraStatementLine = at
		}
		out.hasCode = true
	}
	// countLines advances the line counter over src[from:to].
	countLines := func(from, to int) {
		line += strings.Count(src[from:to], "\n")
	}

	i := 0
	for i < n {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++

		case isSpace(c):
			i++

		case c == '-' && i+1 < n && src[i+1] == '-':
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				i = n
			} else {
				i += end // the newline itself is counted by the loop
			}

		case c == '/' && i+1 < n && src[i+1] == '*':
			start, startLine, depth := i, line, 1
			i += 2
			for i < n && depth > 0 {
				switch {
				case src[i] == '/' && i+1 < n && src[i+1] == '*':
					depth++
					i += 2
				case src[i] == '*' && i+1 < n && src[i+1] == '/':
					depth--
					i += 2
				default:
					i++
				}
			}
			countLines(start, i)
			if depth > 0 {
				return nil, &scanError{line: startLine, msg: "unterminated /* comment"}
			}

		case c == '\'':
			code(line)
			end, err := skipQuoted(src, i, '\'', false, line)
			if err != nil {
				return nil, err
			}
			countLines(i, end)
			i = end

		case c == '"':
			code(line)
			end, err := skipQuoted(src, i, '"', false, line)
			if err != nil {
				return nil, err
			}
			countLines(i, end)
			i = end

		case isIdentStart(c):
			code(line)
			start := i
			for i < n && isIdentChar(src[i]) {
				i++
			}
			// E'…' is the one string form where a backslash escapes the quote.
			if i-start == 1 && (c == 'E' || c == 'e') && i < n && src[i] == '\'' {
				end, err := skipQuoted(src, i, '\'', true, line)
				if err != nil {
					return nil, err
				}
				countLines(i, end)
				i = end
			}

		case c == '$':
			code(line)
			switch {
			case i+1 < n && isDigit(src[i+1]):
				out.positionalLines = append(out.positionalLines, line)
				i++
				for i < n && isDigit(src[i]) {
					i++
				}
			default:
				tagEnd := i + 1
				if tagEnd < n && isIdentStart(src[tagEnd]) {
					for tagEnd < n && isIdentChar(src[tagEnd]) && src[tagEnd] != '$' {
						tagEnd++
					}
				}
				if tagEnd < n && src[tagEnd] == '$' {
					tag := src[i : tagEnd+1]
					closing := strings.Index(src[tagEnd+1:], tag)
					if closing < 0 {
						return nil, &scanError{line: line, msg: "unterminated dollar-quoted string " + tag}
					}
					end := tagEnd + 1 + closing + len(tag)
					countLines(i, end)
					i = end
				} else {
					i++
				}
			}

		case c == '@':
			code(line)
			isParam := i+1 < n && isIdentStart(src[i+1]) &&
				(i == 0 || (src[i-1] != '<' && src[i-1] != '@' && !isIdentChar(src[i-1])))
			if !isParam {
				i++
				continue
			}
			if textStart < i {
				out.pieces = append(out.pieces, piece{line: textLine, text: src[textStart:i]})
			}
			nameStart := i + 1
			i = nameStart
			for i < n && isIdentChar(src[i]) {
				i++
			}
			out.pieces = append(out.pieces, piece{line: line, name: src[nameStart:i], param: true})
			textStart, textLine = i, line

		case c == ';':
			semicolons++
			i++

		default:
			code(line)
			i++
		}
	}
	if textStart < n {
		out.pieces = append(out.pieces, piece{line: textLine, text: src[textStart:]})
	}
	return out, nil
}

// skipQuoted returns the index just past the literal or quoted identifier that starts at
// src[start] (the quote character). A doubled quote is an escaped quote; with backslashes
// true a backslash escapes the next byte too.
func skipQuoted(src string, start int, quote byte, backslashes bool, line int) (int, error) {
	i := start + 1
	for i < len(src) {
		switch {
		case backslashes && src[i] == '\\':
			i += 2
		case src[i] == quote:
			if i+1 < len(src) && src[i+1] == quote {
				i += 2
				continue
			}
			return i + 1, nil
		default:
			i++
		}
	}
	what := "string literal"
	if quote == '"' {
		what = "quoted identifier"
	}
	return 0, &scanError{line: line, msg: "unterminated " + what}
}

// rewrite prints the pieces with each parameter replaced by its positional placeholder and
// an explicit cast to the declared type, so Postgres types the placeholder from the file's
// declaration rather than guessing it from the context. A cast the file adds itself
// (@limit::int) still applies after ours.
func rewrite(pieces []piece, placeholder func(name string) (index int, sqlType string)) string {
	var b strings.Builder
	for _, p := range pieces {
		if !p.param {
			b.WriteString(p.text)
			continue
		}
		index, sqlType := placeholder(p.name)
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(index))
		b.WriteString("::")
		b.WriteString(sqlType)
	}
	return b.String()
}
