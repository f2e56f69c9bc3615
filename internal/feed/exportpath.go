package feed

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	// exportSegment is the only shape a path component may have: it starts
	// with a letter or digit (so never "." or ".."), and holds no separator,
	// no space and nothing a shell or a URL would treat specially.
	exportSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

	// exportFile is a segment that ends in .parquet.
	exportFile = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.parquet$`)
)

// SafeExportPath joins root/source/subject/kind/granularity/file for the
// backfill data plane, and refuses anything that could leave root. The Python
// engine served downloads by joining request path parts with no sanitising;
// here every part must match a strict pattern (letters, digits, '.', '_', '-',
// starting with a letter or digit, at most 64 characters; '..' inside a part
// is refused too), file must end in .parquet, and the result is checked to lie
// under root. Subjects with a slash, such as BTC/USD, must be mapped to a
// plain name before export.
func SafeExportPath(root, source, subject, kind, granularity, file string) (string, error) {
	if strings.TrimSpace(root) == "" {
		return "", errors.New("export path: root is empty")
	}
	parts := []struct{ name, value string }{
		{"source", source},
		{"subject", subject},
		{"kind", kind},
		{"granularity", granularity},
		{"file", file},
	}
	for _, p := range parts {
		if strings.Contains(p.value, "..") {
			return "", fmt.Errorf("export path: %s %q must not contain \"..\"", p.name, p.value)
		}
		re := exportSegment
		if p.name == "file" {
			re = exportFile
		}
		if !re.MatchString(p.value) {
			if p.name == "file" {
				return "", fmt.Errorf("export path: file %q must be a plain name of letters, digits, '.', '_' or '-' ending in .parquet", p.value)
			}
			return "", fmt.Errorf("export path: %s %q must be a plain name of letters, digits, '.', '_' or '-'", p.name, p.value)
		}
	}
	cleanRoot := filepath.Clean(root)
	full := filepath.Join(cleanRoot, source, subject, kind, granularity, file)
	rel, err := filepath.Rel(cleanRoot, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("export path: %q escapes root %q", full, root)
	}
	return full, nil
}
