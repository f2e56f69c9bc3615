package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

var (
	// ErrEmpty is returned when a tree would have no leaves: there is
	// nothing to commit to, and an empty root would be indistinguishable
	// from a missing one.
	ErrEmpty = errors.New("no leaves")

	// ErrBadHash is returned for a hash that is not 64 lowercase hex
	// characters. Parents hash the hex text, so "ABC…" and "abc…" would
	// give different roots for the same digest; refusing both forms but one
	// keeps a single spelling.
	ErrBadHash = errors.New("hash is not 64 lowercase hex characters")
)

// Hash returns the lowercase hex SHA-256 of data.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// HashPair returns the parent of two nodes: the hash of the concatenated
// hex text (128 ASCII characters), as the Python engine defines it.
func HashPair(left, right string) string {
	return Hash([]byte(left + right))
}

// ValidHash reports whether h is spelled as this package writes hashes.
func ValidHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := range len(h) {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkHash(what, h string) error {
	if !ValidHash(h) {
		return fmt.Errorf("%s %q: %w", what, h, ErrBadHash)
	}
	return nil
}

// Tree is an immutable Merkle tree. Level 0 holds the leaves in the order
// given; the last level holds the root.
type Tree struct {
	levels [][]string
}

// NewTree builds a tree over leaves in the order given: the caller decides
// the order (snapshots sorted by model_id, cycles by creation time) because
// it is part of what the root commits to. An odd level pairs its last node
// with itself; a single leaf is its own root.
func NewTree(leaves []string) (*Tree, error) {
	if len(leaves) == 0 {
		return nil, ErrEmpty
	}
	level := make([]string, len(leaves))
	for i, h := range leaves {
		if err := checkHash(fmt.Sprintf("leaf %d", i), h); err != nil {
			return nil, err
		}
		level[i] = h
	}
	levels := [][]string{level}
	for len(level) > 1 {
		next := make([]string, (len(level)+1)/2)
		for i := range next {
			l, r := 2*i, min(2*i+1, len(level)-1)
			next[i] = HashPair(level[l], level[r])
		}
		levels = append(levels, next)
		level = next
	}
	return &Tree{levels: levels}, nil
}

// Root returns the root hash.
func (t *Tree) Root() string {
	return t.levels[len(t.levels)-1][0]
}

// Len returns the number of leaves.
func (t *Tree) Len() int {
	return len(t.levels[0])
}

// Leaf returns the leaf hash at index i.
func (t *Tree) Leaf(i int) string {
	return t.levels[0][i]
}

// Node is one stored node of a tree, shaped for a merkle_nodes row.
type Node struct {
	// Children are the positions, on level Level-1, of the left and right
	// child; nil for leaves. Both are equal when an odd level's last node
	// was paired with itself: the duplicate is not a node of its own.
	Children []int
	Hash     string
	// Level is 0 for leaves and grows toward the root.
	Level int
	// Position is the index within the level, from 0.
	Position int
}

// Nodes lists every node, level by level from the leaves, so the caller can
// store the whole tree and serve proofs or audits without rebuilding it.
func (t *Tree) Nodes() []Node {
	n := 0
	for _, l := range t.levels {
		n += len(l)
	}
	nodes := make([]Node, 0, n)
	for lv, level := range t.levels {
		for pos, h := range level {
			node := Node{Hash: h, Level: lv, Position: pos}
			if lv > 0 {
				below := len(t.levels[lv-1])
				node.Children = []int{2 * pos, min(2*pos+1, below-1)}
			}
			nodes = append(nodes, node)
		}
	}
	return nodes
}

// Side says on which side a proof step's sibling sits, which decides the
// concatenation order when hashing upward.
type Side string

const (
	// Left means parent = HashPair(sibling, current).
	Left Side = "left"
	// Right means parent = HashPair(current, sibling).
	Right Side = "right"
)

// Step is one level of an inclusion proof. The JSON form is the Python
// engine's path element.
type Step struct {
	Hash     string `json:"hash"`
	Position Side   `json:"position"`
}

// Path returns the sibling path from leaf i up to the root; empty for a
// single-leaf tree.
func (t *Tree) Path(i int) ([]Step, error) {
	if i < 0 || i >= t.Len() {
		return nil, fmt.Errorf("leaf index %d outside 0..%d", i, t.Len()-1)
	}
	steps := make([]Step, 0, len(t.levels)-1)
	for _, level := range t.levels[:len(t.levels)-1] {
		if i%2 == 1 {
			steps = append(steps, Step{Hash: level[i-1], Position: Left})
		} else {
			steps = append(steps, Step{Hash: level[min(i+1, len(level)-1)], Position: Right})
		}
		i /= 2
	}
	return steps, nil
}

// Fold hashes h up a path and returns the root it leads to.
func Fold(h string, steps []Step) (string, error) {
	for i, s := range steps {
		if err := checkHash(fmt.Sprintf("step %d", i), s.Hash); err != nil {
			return "", fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch s.Position {
		case Left:
			h = HashPair(s.Hash, h)
		case Right:
			h = HashPair(h, s.Hash)
		default:
			return "", fmt.Errorf("step %d: %w: position %q is neither left nor right", i, ErrMalformed, s.Position)
		}
	}
	return h, nil
}
