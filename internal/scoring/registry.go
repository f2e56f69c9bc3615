package scoring

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/crunchnode/crunch-node/internal/script"
)

// Registry maps SCORING_FUNCTION names to scorers. It starts with the built-ins; Go
// users who build their own binary register more from main before start-up. A
// Registry is an explicit value passed to whoever resolves the configuration, so
// there is no package-level mutable state and tests can use their own.
type Registry struct {
	mu      sync.RWMutex
	scorers map[string]Scorer
}

// NewRegistry returns a registry holding the built-in scorers (see
// [BuiltinScorerNames]).
func NewRegistry() *Registry {
	return &Registry{scorers: maps.Clone(builtinScorers)}
}

// Register adds a scorer under name. Names are unique (replacing a built-in silently
// would make configs mean different things in different binaries) and must not look
// like a script reference.
func (r *Registry) Register(name string, s Scorer) error {
	switch {
	case name == "" || strings.TrimSpace(name) != name:
		return fmt.Errorf("registering scorer %q: name must be non-empty without surrounding spaces", name)
	case script.IsRef(name):
		return fmt.Errorf("registering scorer %q: name looks like a script reference (contains ':' or ends in .star)", name)
	case s == nil:
		return fmt.Errorf("registering scorer %q: scorer is nil", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.scorers[name]; dup {
		return fmt.Errorf("registering scorer %q: %w", name, ErrDuplicate)
	}
	r.scorers[name] = s
	return nil
}

// ErrDuplicate is wrapped by [Registry.Register] when the name is taken.
var ErrDuplicate = errors.New("name already registered")

// Lookup returns the scorer registered under name.
func (r *Registry) Lookup(name string) (Scorer, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.scorers[name]
	return s, ok
}

// Names returns the registered names in order, for error messages and help text.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.scorers))
}

// Scorer resolves a SCORING_FUNCTION setting: a registered name, or
// `path/to/file.star:function` loaded with opts. Errors name the setting and, for
// unknown names, list the known ones, so a typo stops start-up with a useful message.
func (r *Registry) Scorer(ref string, opts script.Options) (Scorer, error) {
	if s, ok := r.Lookup(ref); ok {
		return s, nil
	}
	if !script.IsRef(ref) {
		return nil, fmt.Errorf("SCORING_FUNCTION: unknown scorer %q (built-in or registered: %s; or path/to/file.star:function)",
			ref, strings.Join(r.Names(), ", "))
	}
	parsed, err := script.ParseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("SCORING_FUNCTION: %w", err)
	}
	fn, err := script.LoadRef(parsed, opts)
	if err != nil {
		return nil, fmt.Errorf("SCORING_FUNCTION: %w", err)
	}
	s, err := NewStarlarkScorer(fn)
	if err != nil {
		return nil, fmt.Errorf("SCORING_FUNCTION: %w", err)
	}
	return s, nil
}
