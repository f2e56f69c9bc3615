package script

import (
	"errors"
	"fmt"
	"strings"
)

// Ref names a Starlark callable as `path/to/file.star:function`, the form operators
// write in environment variables and crunch_config.yaml.
type Ref struct {
	// Func is the name of a global in the file.
	Func string
	// Path is the file path as written, relative to the working directory unless
	// absolute.
	Path string
}

// String returns the reference in the `file.star:function` form it was parsed from.
func (r Ref) String() string { return r.Path + ":" + r.Func }

// IsRef reports whether name is meant as a script reference rather than the name of a
// built-in. It is deliberately loose (any ':' or a `.star` suffix) so that a malformed
// reference such as "scoring.star" is sent to [ParseRef] and gets a precise error
// instead of a confusing "unknown built-in".
func IsRef(name string) bool {
	return strings.Contains(name, ":") || strings.HasSuffix(name, ".star")
}

// ParseRef parses `path/to/file.star:function`. The last ':' separates the function so
// that paths containing ':' still work.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return Ref{}, fmt.Errorf("script reference %q: want path/to/file.star:function", s)
	}
	ref := Ref{Func: s[i+1:], Path: s[:i]}
	if !strings.HasSuffix(ref.Path, ".star") || len(ref.Path) == len(".star") {
		return Ref{}, fmt.Errorf("script reference %q: path %q must name a .star file", s, ref.Path)
	}
	if err := checkIdent(ref.Func); err != nil {
		return Ref{}, fmt.Errorf("script reference %q: %w", s, err)
	}
	return ref, nil
}

// checkIdent reports whether s is a valid Starlark identifier, so that typos such as
// "file.star:score-fn" fail at parse time rather than as "no such function".
func checkIdent(s string) error {
	if s == "" {
		return errors.New("function name is empty")
	}
	for i, c := range s {
		letter := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		digit := '0' <= c && c <= '9'
		if !letter && !(digit && i > 0) {
			return fmt.Errorf("function name %q is not an identifier", s)
		}
	}
	return nil
}
