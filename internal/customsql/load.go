package customsql

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Endpoint is one loaded file: GET /custom/<Name>.
type Endpoint struct {
	// Description is the text of the file's "-- description:" header lines.
	Description string
	// File is the path the endpoint was loaded from, for messages.
	File string
	// Name is the file name without ".sql"; the endpoint's path segment.
	Name string
	// Params are the declared parameters in declaration order; the n-th binds to $n.
	Params []Param

	query  string // the SQL with @name rewritten to $n::type
	source string // the SQL as written
}

// SQL returns the statement that runs: the file's query with each @name replaced by its
// typed positional placeholder.
func (e *Endpoint) SQL() string { return e.query }

// Source returns the file's content as written.
func (e *Endpoint) Source() string { return e.source }

// Set is the endpoints loaded from one directory.
type Set struct {
	byName map[string]*Endpoint
	list   []*Endpoint // sorted by name
}

// Endpoints returns the endpoints sorted by name.
func (s *Set) Endpoints() []*Endpoint {
	return append([]*Endpoint(nil), s.list...)
}

// Lookup returns the endpoint with the given name.
func (s *Set) Lookup(name string) (*Endpoint, bool) {
	e, ok := s.byName[name]
	return e, ok
}

// LoadError is a problem with one file. The file's endpoint is not served; the others are.
type LoadError struct {
	Err  error
	File string
	// Line is 1-based; 0 when the problem is not on one line (an unreadable file).
	Line int
}

func (e *LoadError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// endpointName is what a file name (without .sql) must look like to be a path segment that
// needs no escaping.
var endpointName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// headerLine matches "-- key: value" in the file's leading comment block.
var headerLine = regexp.MustCompile(`^--\s*(param|description)\s*:\s*(.*)$`)

// paramDecl matches the value of a "-- param:" line: name, type and an optional default.
var paramDecl = regexp.MustCompile(`^(\S+)\s+([^\s=]+)\s*(=.*)?$`)

// Load reads every *.sql file directly in dir. Files whose names start with "." or "_" are
// skipped, so an operator can disable an endpoint by renaming it. A directory that does not
// exist holds no endpoints and is not an error: most nodes have none.
func Load(dir string) (*Set, []LoadError) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return newSet(nil), nil
	}
	return load(os.DirFS(dir), func(name string) string { return filepath.Join(dir, name) })
}

// LoadFS is Load for a file system, for endpoints embedded in a binary or built in a test.
func LoadFS(fsys fs.FS) (*Set, []LoadError) {
	return load(fsys, func(name string) string { return name })
}

func load(fsys fs.FS, display func(name string) string) (*Set, []LoadError) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return newSet(nil), []LoadError{{File: display("."), Err: fmt.Errorf("listing custom endpoints: %w", err)}}
	}
	var (
		endpoints []*Endpoint
		errs      []LoadError
	)
	for _, entry := range entries {
		name := entry.Name()
		if entry.IsDir() || path.Ext(name) != ".sql" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			continue
		}
		file := display(name)
		content, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, LoadError{File: file, Err: fmt.Errorf("reading: %w", err)})
			continue
		}
		endpoint, fileErrs := parseFile(file, strings.TrimSuffix(name, ".sql"), string(content))
		if len(fileErrs) > 0 {
			errs = append(errs, fileErrs...)
			continue
		}
		endpoints = append(endpoints, endpoint)
	}
	return newSet(endpoints), errs
}

func newSet(endpoints []*Endpoint) *Set {
	sort.Slice(endpoints, func(i, j int) bool { return endpoints[i].Name < endpoints[j].Name })
	s := &Set{byName: make(map[string]*Endpoint, len(endpoints)), list: endpoints}
	for _, e := range endpoints {
		s.byName[e.Name] = e
	}
	return s
}

// parseFile reads one endpoint: the header comments, then the query. It reports every
// problem it finds rather than the first, so an operator fixes a file in one pass.
func parseFile(file, name, content string) (*Endpoint, []LoadError) {
	var errs []LoadError
	fail := func(line int, format string, args ...any) {
		errs = append(errs, LoadError{File: file, Line: line, Err: fmt.Errorf(format, args...)})
	}
	if !endpointName.MatchString(name) {
		fail(0, "endpoint name %q must be letters, digits, '_', '-' or '.', starting with a letter or digit", name)
	}

	endpoint := &Endpoint{File: file, Name: name, source: content}
	var descriptions []string
	declared := map[string]int{} // name → index in Params
	misdeclared := map[string]bool{}
	inHeader := true
	headerEnd := 0 // byte offset of the first line after the header comments
	for i, raw := range strings.Split(content, "\n") {
		lineNo := i + 1
		trimmed := strings.TrimSpace(raw)
		m := headerLine.FindStringSubmatch(trimmed)
		if inHeader && (trimmed == "" || strings.HasPrefix(trimmed, "--")) {
			headerEnd += len(raw) + 1
		}
		switch {
		case inHeader && trimmed == "":
			continue
		case inHeader && m == nil && strings.HasPrefix(trimmed, "--"):
			continue // an ordinary comment
		case inHeader && m == nil:
			inHeader = false
			continue
		case m == nil:
			continue
		case !inHeader && m[1] == "param":
			fail(lineNo, "parameter declared after the query has started; declare parameters in the comments at the top of the file")
			continue
		case !inHeader:
			continue // a "-- description:" further down is just a comment
		case m[1] == "description":
			if d := strings.TrimSpace(m[2]); d != "" {
				descriptions = append(descriptions, d)
			}
			continue
		}

		param, err := parseParam(strings.TrimSpace(m[2]), lineNo)
		if err != nil {
			fail(lineNo, "%w", err)
			// Its uses are not "undeclared": one message per mistake.
			if fields := strings.Fields(m[2]); len(fields) > 0 {
				misdeclared[fields[0]] = true
			}
			continue
		}
		if first, dup := declared[param.Name]; dup {
			fail(lineNo, "parameter %q declared twice (first on line %d)", param.Name, endpoint.Params[first].Line)
			continue
		}
		declared[param.Name] = len(endpoint.Params)
		endpoint.Params = append(endpoint.Params, param)
	}
	endpoint.Description = strings.Join(descriptions, " ")

	scanned, err := scan(content)
	if err != nil {
		var scanErr *scanError
		if errors.As(err, &scanErr) {
			fail(scanErr.line, "%s", scanErr.msg)
		} else {
			fail(0, "%w", err)
		}
		return nil, errs
	}
	if !scanned.hasCode {
		fail(0, "the file holds no query")
	}
	if scanned.extraStatementLine > 0 {
		fail(scanned.extraStatementLine, "a second statement starts here; an endpoint is exactly one query")
	}
	for _, line := range scanned.positionalLines {
		fail(line, "positional placeholders ($1) are not supported; declare a parameter and write @name")
	}
	used := map[string]bool{}
	for _, p := range scanned.pieces {
		if !p.param {
			continue
		}
		if _, ok := declared[p.name]; !ok && !used[p.name] && !misdeclared[p.name] {
			fail(p.line, "@%s is used but not declared; add \"-- param: %s <type>\" to the header", p.name, p.name)
		}
		used[p.name] = true
	}
	for _, p := range endpoint.Params {
		if !used[p.Name] {
			fail(p.Line, "parameter %q is declared but the query never uses @%s", p.Name, p.Name)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// The header is comments only, which the rewrite leaves as they are, so cutting it off
	// the rewritten text leaves just the query.
	rewritten := rewrite(scanned.pieces, func(name string) (int, string) {
		i := declared[name]
		return i + 1, paramTypes[endpoint.Params[i].Type]
	})
	endpoint.query = strings.TrimSpace(rewritten[min(headerEnd, len(rewritten)):])
	return endpoint, nil
}

// parseParam parses the value of one "-- param:" line: "name type" or "name type = default".
// A text default may be quoted ('a b' or "a b") to keep surrounding spaces.
func parseParam(decl string, line int) (Param, error) {
	m := paramDecl.FindStringSubmatch(decl)
	if m == nil {
		return Param{}, fmt.Errorf("cannot read parameter declaration %q; write \"-- param: name type\" or \"-- param: name type = default\"", decl)
	}
	p := Param{Line: line, Name: m[1], Type: ParamType(strings.ToLower(m[2]))}
	if !paramName.MatchString(p.Name) {
		return Param{}, fmt.Errorf("parameter name %q must be letters, digits and '_', not starting with a digit", p.Name)
	}
	if _, ok := paramTypes[p.Type]; !ok {
		return Param{}, fmt.Errorf("parameter %q has unknown type %q; use %s", p.Name, m[2], paramTypeList)
	}
	if m[3] == "" {
		return p, nil
	}
	text := strings.TrimSpace(m[3][1:])
	if text == "" {
		return Param{}, fmt.Errorf("parameter %q has an empty default after '='; leave out '=' for a NULL default", p.Name)
	}
	if len(text) >= 2 && (text[0] == '\'' || text[0] == '"') && text[len(text)-1] == text[0] {
		text = text[1 : len(text)-1]
	}
	v, err := parseValue(p.Type, text)
	if err != nil {
		return Param{}, fmt.Errorf("default of parameter %q: %q %w", p.Name, text, err)
	}
	p.Default, p.DefaultText = v, text
	return p, nil
}
