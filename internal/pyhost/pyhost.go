package pyhost

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crunchnode/crunch-node/internal/modelrunner"
)

// hostFiles is the Python host. all: because packages need their __init__.py files.
//
//go:embed all:host
var hostFiles embed.FS

// DefaultBaseClass is MODEL_BASE_CLASSNAME's default.
const DefaultBaseClass = "cruncher.ModelBaseClass"

// InstallHint says how to get an interpreter the host runs on.
const InstallHint = "install Debian's python3-grpcio and python3-protobuf (apt-get install -y python3-grpcio python3-protobuf)"

// probeTimeout bounds one interpreter check; importing grpc takes well under a second,
// but a cold disk or a slow shim (pyenv) can take a few.
const probeTimeout = 30 * time.Second

// completeMarker is written last into an extracted host, so a half-written copy (a crash
// mid-extraction) is never used.
const completeMarker = ".complete"

// Options configures NewRuntime. The zero value finds an interpreter, extracts the host
// under the user's cache directory and listens on 127.0.0.1.
type Options struct {
	// BaseClass is looked for when a host starts, so that a submission without a usable
	// model class shows in the log at once. Setup always uses the class name the
	// coordinator sends. Default DefaultBaseClass; "-" skips the check.
	BaseClass string
	// CacheDir receives the host's files (in a subdirectory named by their hash, so
	// binaries of different versions never share one). Default:
	// <os.UserCacheDir>/crunch-node/pyhost.
	CacheDir string
	// Host is the address the model hosts listen on; it must be where the local source
	// dials them. Default 127.0.0.1, the local source's default.
	Host string
	// Python is the interpreter. Empty means Find.
	Python string
}

// Runtime is the local model source's "python" runtime: each model is served by the
// embedded host run with pythonPath (empty: Find), from its code_dir.
func Runtime(pythonPath string) modelrunner.CommandFunc {
	return NewRuntime(Options{Python: pythonPath})
}

// NewRuntime is Runtime with every option. The interpreter is found and the host extracted
// once, when the first model starts; later models reuse both (and their errors).
func NewRuntime(opts Options) modelrunner.CommandFunc {
	if opts.BaseClass == "" {
		opts.BaseClass = DefaultBaseClass
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	type prepared struct{ dir, python string }
	prepare := sync.OnceValues(func() (prepared, error) {
		python := opts.Python
		if python == "" {
			found, err := Find()
			if err != nil {
				return prepared{}, err
			}
			python = found
		}
		dir, err := Extract(cmp.Or(opts.CacheDir, DefaultCacheDir()))
		if err != nil {
			return prepared{}, err
		}
		return prepared{dir: dir, python: python}, nil
	})
	return func(m modelrunner.LocalModel, port int) (*exec.Cmd, error) {
		if m.CodeDir == "" {
			return nil, fmt.Errorf("model %s: code_dir is required for the python runtime", m.ID)
		}
		if fi, err := os.Stat(m.CodeDir); err != nil {
			return nil, fmt.Errorf("model %s: code_dir: %w", m.ID, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("model %s: code_dir %s is not a directory", m.ID, m.CodeDir)
		}
		p, err := prepare()
		if err != nil {
			return nil, fmt.Errorf("model %s: preparing the python runtime: %w", m.ID, err)
		}
		// -u: unbuffered, so the model's prints reach the node's log line by line.
		args := []string{"-u", filepath.Join(p.dir, "main.py"),
			"--code-dir", m.CodeDir, "--port", strconv.Itoa(port), "--host", opts.Host}
		if opts.BaseClass != "-" {
			args = append(args, "--base-class", opts.BaseClass)
		}
		args = append(args, m.Args...)
		return exec.Command(p.python, args...), nil //nolint:gosec // the operator's own interpreter and files
	}
}

// Available reports whether a python3 that can run the host is installed; the error says
// what was tried and how to fix it.
func Available() error {
	_, err := Find()
	return err
}

// Find returns the first interpreter that can run the host: `python3` on PATH, then
// /usr/bin/python3 (where Debian's python3-grpcio lives even when PATH leads to a pyenv
// or virtualenv python without it).
func Find() (string, error) {
	var tried []string
	seen := map[string]bool{}
	for _, candidate := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(candidate)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: not found", candidate))
			continue
		}
		if resolved, err := filepath.EvalSymlinks(path); err == nil {
			if seen[resolved] {
				continue // python3 on PATH is /usr/bin/python3: checked already
			}
			seen[resolved] = true
		}
		if err := Check(path); err != nil {
			tried = append(tried, err.Error())
			continue
		}
		return path, nil
	}
	return "", fmt.Errorf("no python3 with grpc and protobuf found (%s); %s", strings.Join(tried, "; "), InstallHint)
}

// Check reports whether python can import what the host needs: grpc and the protobuf
// runtime its generated modules use.
func Check(python string) error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "-c", "import grpc, google.protobuf.internal.builder")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		reason := err.Error()
		if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); lines[len(lines)-1] != "" {
			reason = lines[len(lines)-1]
		}
		return fmt.Errorf("%s: %s", python, reason)
	}
	return nil
}

// DefaultCacheDir is where NewRuntime extracts the host unless told otherwise: the user's
// cache directory, or the temporary directory for users without a home.
func DefaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "crunch-node", "pyhost")
}

// Extract writes the embedded host into a subdirectory of cacheDir named by a hash of its
// contents, unless a complete copy is there already, and returns that subdirectory (which
// holds main.py). Concurrent extractions, even by several processes, are safe: each writes
// a private copy and renames it into place.
func Extract(cacheDir string) (string, error) {
	files, sum, err := hostSnapshot()
	if err != nil {
		return "", err
	}
	target := filepath.Join(cacheDir, "host-"+sum[:16])
	if _, err := os.Stat(filepath.Join(target, completeMarker)); err == nil {
		return target, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("creating python host cache %s: %w", cacheDir, err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".host-tmp-")
	if err != nil {
		return "", fmt.Errorf("creating python host cache: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a no-op once renamed
	for _, f := range files {
		dst := filepath.Join(tmp, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("extracting python host: %w", err)
		}
		if err := os.WriteFile(dst, f.data, 0o644); err != nil {
			return "", fmt.Errorf("extracting python host: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(sum+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("extracting python host: %w", err)
	}
	if err := os.Rename(tmp, target); err != nil {
		// Someone else finished first; their copy is identical.
		if _, statErr := os.Stat(filepath.Join(target, completeMarker)); statErr == nil {
			return target, nil
		}
		return "", fmt.Errorf("installing python host into %s: %w", target, err)
	}
	return target, nil
}

type hostFile struct {
	data []byte
	path string // slash-separated, relative to host/
}

// hostSnapshot lists the embedded host's files (bytecode caches left in the source tree
// are skipped) and hashes them.
func hostSnapshot() ([]hostFile, string, error) {
	var files []hostFile
	h := sha256.New()
	err := fs.WalkDir(hostFiles, "host", func(p string, d fs.DirEntry, err error) error {
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
		data, err := hostFiles.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "host/")
		files = append(files, hostFile{data: data, path: rel})
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("reading embedded python host: %w", err)
	}
	if len(files) == 0 || !hasFile(files, "main.py") {
		return nil, "", errors.New("embedded python host is missing main.py")
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

func hasFile(files []hostFile, name string) bool {
	for _, f := range files {
		if path.Clean(f.path) == name {
			return true
		}
	}
	return false
}
