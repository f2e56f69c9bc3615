package customsql

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func paramNames(s *scanned) []string {
	names := []string{}
	for _, p := range s.pieces {
		if p.param {
			names = append(names, p.name)
		}
	}
	return names
}

// reassemble prints pieces back; for a scan without error it must give the source.
func reassemble(pieces []piece) string {
	var b strings.Builder
	for _, p := range pieces {
		if p.param {
			b.WriteString("@" + p.name)
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String()
}

func TestScan(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		src    string
		params []string
	}{
		{name: "AtAfterIdentifier", src: "SELECT x@y, 1@z", params: []string{}},
		{name: "BlockCommentNested", src: "SELECT /* @a /* @b */ @c */ @d", params: []string{"d"}},
		{name: "CastAfterParam", src: "WHERE @model_id::text IS NULL", params: []string{"model_id"}},
		{name: "ContainedByOperator", src: "a <@ @b AND a<@c", params: []string{"b"}},
		{name: "ContainsOperator", src: "tags @> @want AND tags@>'{}'", params: []string{"want"}},
		{name: "DollarInIdentifier", src: "SELECT foo$1, @a", params: []string{"a"}},
		{name: "DollarQuoted", src: "$$ @a $$ || $x$ @b $y$ $x$ || @c", params: []string{"c"}},
		{name: "EscapeString", src: `E'it\'s @a' || e'\\' || @b`, params: []string{"b"}},
		{name: "EscapeStringNeedsLoneE", src: `SELECT name'x' || @b`, params: []string{"b"}},
		{name: "LineComment", src: "-- @a\n@b -- @c", params: []string{"b"}},
		{name: "ParamAfterParenAndComma", src: "f(@a,@b)=@c", params: []string{"a", "b", "c"}},
		{name: "ParamNameWithDigitsAndDollar", src: "@a1 @b$c", params: []string{"a1", "b$c"}},
		{name: "QuotedIdentifier", src: `SELECT "@a", "x""@y" FROM t`, params: []string{}},
		{name: "Repeated", src: "@a = @a", params: []string{"a", "a"}},
		{name: "StandardStringBackslash", src: `'\' || @b`, params: []string{"b"}},
		{name: "String", src: "'@a' || 'it''s @b' || @c", params: []string{"c"}},
		{name: "TextSearchMatch", src: "tsv @@ @q AND tsv@@q", params: []string{"q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := scan(tt.src)
			require.NoError(t, err)
			require.Equal(t, tt.params, paramNames(s))
			require.Equal(t, tt.src, reassemble(s.pieces))
		})
	}
}

func TestScanStatements(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		src        string
		extraLine  int
		hasCode    bool
		positional []int
	}{
		{name: "CommentAfterSemicolon", src: "SELECT 1; -- done\n/* end */\n", hasCode: true},
		{name: "Empty", src: "  \n-- only a comment\n/* and another */;"},
		{name: "Positional", src: "SELECT $1,\n $2", hasCode: true, positional: []int{1, 2}},
		{name: "SecondStatement", src: "SELECT 1;\n\nDELETE FROM models", hasCode: true, extraLine: 3},
		{name: "SemicolonInString", src: "SELECT ';' || $$;$$", hasCode: true},
		{name: "TrailingSemicolons", src: "SELECT 1;;\n", hasCode: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := scan(tt.src)
			require.NoError(t, err)
			require.Equal(t, tt.hasCode, s.hasCode)
			require.Equal(t, tt.extraLine, s.extraStatementLine)
			require.Equal(t, tt.positional, s.positionalLines)
		})
	}
}

func TestScanErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{name: "BlockComment", src: "SELECT 1\n/* /* */", line: 2, msg: "unterminated /* comment"},
		{name: "DollarQuote", src: "SELECT\n$tag$ x $tag", line: 2, msg: "unterminated dollar-quoted string $tag$"},
		{name: "EscapeString", src: `SELECT E'\'`, line: 1, msg: "unterminated string literal"},
		{name: "QuotedIdentifier", src: "SELECT\n\n\"x", line: 3, msg: "unterminated quoted identifier"},
		{name: "String", src: "SELECT 'it''s", line: 1, msg: "unterminated string literal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := scan(tt.src)
			var scanErr *scanError
			require.ErrorAs(t, err, &scanErr)
			require.Equal(t, tt.line, scanErr.line)
			require.Equal(t, tt.msg, scanErr.msg)
		})
	}
}

func TestScanLines(t *testing.T) {
	t.Parallel()
	s, err := scan("SELECT 'a\nb' AS x, /* \n */ @a,\n$$\n$$, @b")
	require.NoError(t, err)
	var lines []int
	for _, p := range s.pieces {
		if p.param {
			lines = append(lines, p.line)
		}
	}
	require.Equal(t, []int{3, 5}, lines)
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	src := "SELECT model_id FROM leaderboard\n" +
		"WHERE (@model_id::text IS NULL OR model_id = @model_id) AND tags @> '{\"@x\"}' ORDER BY rank LIMIT @limit;"
	s, err := scan(src)
	require.NoError(t, err)
	index := map[string]int{"limit": 1, "model_id": 2}
	types := map[string]string{"limit": "bigint", "model_id": "text"}
	got := rewrite(s.pieces, func(name string) (int, string) { return index[name], types[name] })
	require.Equal(t, "SELECT model_id FROM leaderboard\n"+
		"WHERE ($2::text::text IS NULL OR model_id = $2::text) AND tags @> '{\"@x\"}' ORDER BY rank LIMIT $1::bigint;", got)
}

// FuzzScan checks, for any input, that the lexer never panics, that its pieces give back the
// source exactly, and that rewriting the parameters to placeholders changes nothing else: the
// rewritten query has no parameters left, one positional placeholder per parameter use, and
// the same statement structure.
func FuzzScan(f *testing.F) {
	for _, seed := range []string{
		"SELECT model_id FROM leaderboard WHERE (@model_id::text IS NULL OR model_id = @model_id) LIMIT @limit;",
		"SELECT '@a', \"@b\", E'\\'@c', $$@d$$, $t$ @e $t$ -- @f\n /* @g /* @h */ */ @i",
		"tags @> @want AND a <@ @b AND tsv @@ @q AND x@y",
		"SELECT 1; SELECT 2",
		"SELECT $1, foo$2, @a$b, e'x', @e'y'",
		"@x$$ $$",
		"'unterminated",
		"/* unterminated",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := scan(src)
		if err != nil {
			return
		}
		require.Equal(t, src, reassemble(s.pieces))

		index := map[string]int{}
		uses := 0
		for _, p := range s.pieces {
			if p.param {
				uses++
				if _, ok := index[p.name]; !ok {
					index[p.name] = len(index) + 1
				}
			}
		}
		out := rewrite(s.pieces, func(name string) (int, string) { return index[name], "text" })
		again, err := scan(out)
		require.NoError(t, err, "rewritten: %q", out)
		require.Empty(t, paramNames(again), "rewritten: %q", out)
		require.Len(t, again.positionalLines, len(s.positionalLines)+uses, "rewritten: %q", out)
		require.Equal(t, s.hasCode, again.hasCode)
		require.Equal(t, s.extraStatementLine, again.extraStatementLine)
		if uses == 0 {
			require.Equal(t, src, out)
		}
		for name, i := range index {
			require.Contains(t, out, "$"+strconv.Itoa(i)+"::text", "parameter %s", name)
		}
	})
}
