package customsql

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	return dir
}

func TestLoad(t *testing.T) {
	t.Parallel()

	t.Run("Example", func(t *testing.T) {
		t.Parallel()
		set, errs := Load("testdata/api")
		require.Empty(t, errs)
		endpoint, ok := set.Lookup("top_models")
		require.True(t, ok)
		require.Equal(t, "testdata/api/top_models.sql", endpoint.File)
		require.Equal(t, "The ranked models of the leaderboard, best first, or the row of one model.", endpoint.Description)
		require.Equal(t, []Param{
			{Default: int64(10), DefaultText: "10", Line: 2, Name: "limit", Type: TypeInt},
			{Line: 3, Name: "model_id", Type: TypeText},
		}, endpoint.Params)
		require.Equal(t, "SELECT model_id, model_name, cruncher_name, rank, ranking_value\n"+
			"FROM leaderboard\n"+
			"WHERE rank IS NOT NULL\n"+
			"  AND ($2::text::text IS NULL OR model_id = $2::text)\n"+
			"ORDER BY rank\n"+
			"LIMIT $1::bigint;", endpoint.SQL())
	})

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		set, errs := LoadFS(fstest.MapFS{"d.sql": {Data: []byte(strings.Join([]string{
			"-- param: b bool = true",
			"-- param: f float=0.5",
			"--param: quoted text = ' padded '",
			"-- param: since timestamptz = 2026-03-20T12:00:00+02:00",
			"-- param: t text = plain words",
			"SELECT @b, @f, @quoted, @since, @t",
		}, "\n"))}})
		require.Empty(t, errs)
		endpoint, ok := set.Lookup("d")
		require.True(t, ok)
		defaults := map[string]any{}
		for _, p := range endpoint.Params {
			defaults[p.Name] = p.Default
		}
		require.Equal(t, map[string]any{
			"b":      true,
			"f":      0.5,
			"quoted": " padded ",
			"since":  time.Date(2026, 3, 20, 10, 0, 0, 0, time.UTC),
			"t":      "plain words",
		}, defaults)
	})

	t.Run("MissingDirectory", func(t *testing.T) {
		t.Parallel()
		set, errs := Load(filepath.Join(t.TempDir(), "absent"))
		require.Empty(t, errs)
		require.Empty(t, set.Endpoints())
	})

	t.Run("SkipsDisabledHiddenAndOtherFiles", func(t *testing.T) {
		t.Parallel()
		dir := writeFiles(t, map[string]string{
			".hidden.sql":   "SELECT 1",
			"_disabled.sql": "SELECT 1",
			"b.sql":         "SELECT 2",
			"a.sql":         "SELECT 1",
			"notes.txt":     "not SQL",
			"sub/c.sql":     "SELECT 3",
		})
		set, errs := Load(dir)
		require.Empty(t, errs)
		var names []string
		for _, e := range set.Endpoints() {
			names = append(names, e.Name)
		}
		require.Equal(t, []string{"a", "b"}, names)
	})

	t.Run("BadFilesDoNotStopGoodOnes", func(t *testing.T) {
		t.Parallel()
		dir := writeFiles(t, map[string]string{
			"good.sql":       "-- param: n int = 1\nSELECT @n",
			"two.sql":        "SELECT 1;\nSELECT 2;",
			"undeclared.sql": "-- param: a int\nSELECT @a,\n  @b",
		})
		set, errs := Load(dir)
		_, ok := set.Lookup("good")
		require.True(t, ok)
		require.Len(t, set.Endpoints(), 1)
		var messages []string
		for _, e := range errs {
			messages = append(messages, e.Error())
		}
		require.Equal(t, []string{
			filepath.Join(dir, "two.sql") + ":2: a second statement starts here; an endpoint is exactly one query",
			filepath.Join(dir, "undeclared.sql") + `:3: @b is used but not declared; add "-- param: b <type>" to the header`,
		}, messages)
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		content string
		line    int
		msg     string
	}{
		{name: "BadDefault", content: "-- param: n int = ten\nSELECT @n", line: 1, msg: `default of parameter "n": "ten" is not a 64-bit integer`},
		{name: "BadParamName", content: "-- param: 1n int\nSELECT 1", line: 1, msg: `parameter name "1n" must be letters, digits and '_', not starting with a digit`},
		{name: "DeclaredAfterQuery", content: "-- param: a int\nSELECT @a\n-- param: b int", line: 3, msg: "parameter declared after the query has started; declare parameters in the comments at the top of the file"},
		{name: "DuplicateParam", content: "-- param: a int\n\n-- param: a text\nSELECT @a", line: 3, msg: `parameter "a" declared twice (first on line 1)`},
		{name: "EmptyDefault", content: "-- param: a int =\nSELECT @a", line: 1, msg: `parameter "a" has an empty default after '='; leave out '=' for a NULL default`},
		{name: "EmptyQuery", content: "-- description: nothing\n\n-- really nothing\n;", line: 0, msg: "the file holds no query"},
		{name: "MalformedParam", content: "-- param: limit\nSELECT 1", line: 1, msg: `cannot read parameter declaration "limit"; write "-- param: name type" or "-- param: name type = default"`},
		{name: "Positional", content: "SELECT 1\nWHERE x = $1", line: 2, msg: "positional placeholders ($1) are not supported; declare a parameter and write @name"},
		{name: "TwoStatements", content: "SELECT 1;\n-- then\nUPDATE models SET name = 'x'", line: 3, msg: "a second statement starts here; an endpoint is exactly one query"},
		{name: "Undeclared", content: "-- param: a int\nSELECT @a, @b", line: 2, msg: `@b is used but not declared; add "-- param: b <type>" to the header`},
		{name: "UnknownType", content: "-- param: a integer\nSELECT @a", line: 1, msg: `parameter "a" has unknown type "integer"; use bool, float, int, text or timestamptz`},
		{name: "UnterminatedString", content: "SELECT\n'abc", line: 2, msg: "unterminated string literal"},
		{name: "Unused", content: "-- param: a int\n-- param: b int\nSELECT @a", line: 2, msg: `parameter "b" is declared but the query never uses @b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set, errs := LoadFS(fstest.MapFS{"e.sql": {Data: []byte(tt.content)}})
			require.Empty(t, set.Endpoints())
			require.Len(t, errs, 1, "%v", errs)
			require.Equal(t, "e.sql", errs[0].File)
			require.Equal(t, tt.line, errs[0].Line)
			require.Equal(t, tt.msg, errs[0].Err.Error())
		})
	}

	t.Run("BadEndpointName", func(t *testing.T) {
		t.Parallel()
		_, errs := LoadFS(fstest.MapFS{"top models.sql": {Data: []byte("SELECT 1")}})
		require.Len(t, errs, 1)
		require.Equal(t, `top models.sql: endpoint name "top models" must be letters, digits, '_', '-' or '.', starting with a letter or digit`, errs[0].Error())
	})
}

// FuzzParseFile checks that no file content makes the loader panic, and that every file it
// accepts has a query without named parameters left and binds every declared parameter.
func FuzzParseFile(f *testing.F) {
	for _, seed := range []string{
		"-- param: limit int = 10\n-- param: model_id text\nSELECT * FROM leaderboard WHERE (@model_id::text IS NULL OR model_id = @model_id) LIMIT @limit;",
		"-- description: x\n-- param: at timestamptz = 2026-01-01\nSELECT @at",
		"-- param: a bool\n-- param: a bool\nSELECT @a",
		"-- param: q text = 'x'\nSELECT $$@q$$, @q",
		"SELECT 1; SELECT 2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, content string) {
		endpoint, errs := parseFile("f.sql", "f", content)
		if len(errs) > 0 {
			require.Nil(t, endpoint)
			for _, e := range errs {
				require.Equal(t, "f.sql", e.File)
				require.GreaterOrEqual(t, e.Line, 0)
			}
			return
		}
		s, err := scan(endpoint.SQL())
		require.NoError(t, err)
		require.Empty(t, paramNames(s))
		require.Len(t, s.positionalLines, countUses(t, content))
		for _, p := range endpoint.Params {
			_, known := paramTypes[p.Type]
			require.True(t, known)
		}
	})
}

func countUses(t *testing.T, content string) int {
	t.Helper()
	s, err := scan(content)
	require.NoError(t, err)
	return len(paramNames(s))
}
