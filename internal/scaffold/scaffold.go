// Package scaffold is `crunch-node init NAME [--pack realtime] [-o DIR]`: it writes a
// self-contained competition workspace (the node's settings and competition file, a
// deployment, and the participants' challenge kit with example models, a scoring function
// and tests) from templates embedded in the binary, so one command and `crunch-node dev`
// give a live competition without cloning anything.
//
// The templates are templates/base (every workspace) overlaid with templates/packs/<pack>.
// They are plain files of a working competition named "starter-challenge"; Generate
// replaces starter-challenge with NAME and starter_challenge with its snake_case form in
// file contents and paths, as the Python engine's init does, so a template can be run and
// tested as it is.
package scaffold

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

//go:embed all:templates
var templates embed.FS

// DefaultPack is the pack used when none is named.
const DefaultPack = "realtime"

// The names the templates are written with.
const (
	templateName  = "starter-challenge"
	templateSnake = "starter_challenge"
)

// localEnvExample is copied to node/.local.env: the workspace runs as generated, and the
// example stays the shared, committed reference of every setting.
const (
	localEnvExample = "node/.local.env.example"
	localEnv        = "node/.local.env"
)

// namePattern keeps NAME usable everywhere it lands: a CRUNCH_ID, a compose project name,
// a directory, and (in snake_case) a Python package name.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9]*([-_][a-z0-9]+)*$`)

// Options says what to generate.
type Options struct {
	// Dir is the workspace directory to create; it must not exist. Default: NAME in the
	// working directory.
	Dir string
	// Name is the competition's name, e.g. btc-sprint: lowercase letters and digits
	// separated by single dashes or underscores, starting with a letter.
	Name string
	// Pack selects the competition type; default DefaultPack. See Packs.
	Pack string
}

// ErrExists is wrapped when the target directory exists already; Generate never writes
// into an existing directory.
var ErrExists = fs.ErrExist

// Packs lists the available packs, sorted.
func Packs() []string {
	entries, err := fs.ReadDir(templates, "templates/packs")
	if err != nil {
		return nil
	}
	var packs []string
	for _, e := range entries {
		if e.IsDir() {
			packs = append(packs, e.Name())
		}
	}
	return packs
}

// SnakeName is name with dashes as underscores: the Python package name.
func SnakeName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// ValidateName says why name cannot be a competition name, if it cannot.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("invalid competition name %q: use lowercase letters and digits separated by single dashes or underscores, starting with a letter (e.g. btc-sprint)", name)
	}
	return nil
}

// Generate writes the workspace and returns its absolute path. It refuses an existing
// target, and removes what it wrote if it fails half-way.
func Generate(opts Options) (string, error) {
	if err := ValidateName(opts.Name); err != nil {
		return "", err
	}
	pack := opts.Pack
	if pack == "" {
		pack = DefaultPack
	}
	if !slices.Contains(Packs(), pack) {
		return "", fmt.Errorf("unknown pack %q (available: %s)", pack, strings.Join(Packs(), ", "))
	}
	dir := opts.Dir
	if dir == "" {
		dir = opts.Name
	}
	target, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", dir, err)
	}
	if _, err := os.Lstat(target); err == nil {
		return "", fmt.Errorf("%s already exists; choose another name or directory (-o): %w", target, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("checking %s: %w", target, err)
	}

	files, err := collect(pack)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", filepath.Dir(target), err)
	}
	// Mkdir, not MkdirAll: if someone created the directory since the check, fail
	// rather than write into it.
	if err := os.Mkdir(target, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%s already exists; choose another name or directory (-o): %w", target, ErrExists)
		}
		return "", fmt.Errorf("creating %s: %w", target, err)
	}
	if err := write(target, files, opts.Name); err != nil {
		_ = os.RemoveAll(target)
		return "", err
	}
	return target, nil
}

// collect maps workspace paths (slash-separated, still with the template names) to
// template paths: base first, the pack's files overriding.
func collect(pack string) (map[string]string, error) {
	files := map[string]string{}
	for _, root := range []string{"templates/base", "templates/packs/" + pack} {
		err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "__pycache__" {
					return fs.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(p, ".pyc") {
				return nil
			}
			files[strings.TrimPrefix(p, root+"/")] = p
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading templates %s: %w", root, err)
		}
	}
	if src, ok := files[localEnvExample]; ok {
		files[localEnv] = src
	}
	return files, nil
}

func write(target string, files map[string]string, name string) error {
	replacer := strings.NewReplacer(templateName, name, templateSnake, SnakeName(name))
	rels := make([]string, 0, len(files))
	for rel := range files {
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	for _, rel := range rels {
		data, err := templates.ReadFile(files[rel])
		if err != nil {
			return fmt.Errorf("reading template %s: %w", files[rel], err)
		}
		dst := filepath.Join(target, filepath.FromSlash(replacer.Replace(rel)))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", filepath.Dir(dst), err)
		}
		mode := os.FileMode(0o644)
		if path.Base(rel) == path.Base(localEnv) {
			mode = 0o600 // will hold API_KEY and database passwords
		}
		if err := os.WriteFile(dst, []byte(replacer.Replace(string(data))), mode); err != nil {
			return fmt.Errorf("writing %s: %w", dst, err)
		}
	}
	return nil
}
