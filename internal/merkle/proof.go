package merkle

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed is returned for a proof that cannot be evaluated at all
	// (bad hash spelling, unknown step position, inconsistent fields).
	ErrMalformed = errors.New("malformed proof")

	// ErrMismatch is returned when a proof evaluates but does not lead to
	// the root it claims: the data or the proof was altered.
	ErrMismatch = errors.New("proof does not match")
)

// Chain links a cycle to its predecessor: HashPair(previous, snapshotsRoot),
// or snapshotsRoot itself for the first cycle (previous == ""). Chaining
// makes every cycle root commit to the whole history before it.
func Chain(previous, snapshotsRoot string) string {
	if previous == "" {
		return snapshotsRoot
	}
	return HashPair(previous, snapshotsRoot)
}

// Cycle is one scoring cycle's commitment: the tree over its snapshot
// hashes and the chained root that ties it to the previous cycle.
type Cycle struct {
	// ChainedRoot is Chain(PreviousCycleRoot, SnapshotsRoot); it is the
	// cycle's leaf in the checkpoint tree.
	ChainedRoot string
	// PreviousCycleRoot is the chained root of the cycle created just
	// before; empty for the first cycle.
	PreviousCycleRoot string
	// SnapshotsRoot is Tree.Root().
	SnapshotsRoot string
	Tree          *Tree
}

// NewCycle commits to a cycle's snapshot content hashes, given in tree
// order (sorted by model id: see [SortSnapshots]).
func NewCycle(previousCycleRoot string, leaves []string) (*Cycle, error) {
	if previousCycleRoot != "" {
		if err := checkHash("previous cycle root", previousCycleRoot); err != nil {
			return nil, err
		}
	}
	tree, err := NewTree(leaves)
	if err != nil {
		return nil, fmt.Errorf("building cycle tree: %w", err)
	}
	return &Cycle{
		ChainedRoot:       Chain(previousCycleRoot, tree.Root()),
		PreviousCycleRoot: previousCycleRoot,
		SnapshotsRoot:     tree.Root(),
		Tree:              tree,
	}, nil
}

// Proof shows that one snapshot is committed by a checkpoint. It runs in
// three segments: Path from Leaf to SnapshotsRoot, the chaining step
// Chain(PreviousCycleRoot, SnapshotsRoot) = CycleRoot, and CheckpointPath
// from CycleRoot to MerkleRoot.
//
// The JSON names extend the Python engine's /reports/merkle/proof body
// (snapshot_content_hash, cycle_root, merkle_root, path), so existing
// clients keep working; the API adds snapshot_id, cycle_id and
// checkpoint_id around it.
type Proof struct {
	// CheckpointPath is the sibling path in the checkpoint tree; empty
	// when the checkpoint covers a single cycle.
	CheckpointPath []Step `json:"checkpoint_path"`
	// CycleRoot is the cycle's chained root.
	CycleRoot string `json:"cycle_root"`
	// Leaf is the snapshot's content hash.
	Leaf string `json:"snapshot_content_hash"`
	// MerkleRoot is the checkpoint root; empty while the cycle is not yet
	// part of a checkpoint, in which case the proof ends at CycleRoot.
	MerkleRoot string `json:"merkle_root,omitempty"`
	// Path is the sibling path in the cycle's snapshot tree.
	Path []Step `json:"path"`
	// PreviousCycleRoot is the chained root of the previous cycle; empty
	// for the first cycle.
	PreviousCycleRoot string `json:"previous_cycle_root,omitempty"`
	// SnapshotsRoot is the root of the cycle's snapshot tree.
	SnapshotsRoot string `json:"snapshots_root"`
}

// NewProof builds the proof for leaf leafIndex of cycle. checkpoint is the
// tree over chained cycle roots and cycleIndex the cycle's position in it;
// pass a nil checkpoint for a cycle that no checkpoint covers yet.
func NewProof(cycle *Cycle, leafIndex int, checkpoint *Tree, cycleIndex int) (Proof, error) {
	path, err := cycle.Tree.Path(leafIndex)
	if err != nil {
		return Proof{}, fmt.Errorf("snapshot path: %w", err)
	}
	p := Proof{
		CheckpointPath:    []Step{},
		CycleRoot:         cycle.ChainedRoot,
		Leaf:              cycle.Tree.Leaf(leafIndex),
		Path:              path,
		PreviousCycleRoot: cycle.PreviousCycleRoot,
		SnapshotsRoot:     cycle.SnapshotsRoot,
	}
	if checkpoint == nil {
		return p, nil
	}
	if cycleIndex < 0 || cycleIndex >= checkpoint.Len() {
		return Proof{}, fmt.Errorf("cycle index %d outside 0..%d", cycleIndex, checkpoint.Len()-1)
	}
	if got := checkpoint.Leaf(cycleIndex); got != cycle.ChainedRoot {
		return Proof{}, fmt.Errorf("%w: checkpoint leaf %d is %s, cycle root is %s",
			ErrMismatch, cycleIndex, got, cycle.ChainedRoot)
	}
	if p.CheckpointPath, err = checkpoint.Path(cycleIndex); err != nil {
		return Proof{}, fmt.Errorf("checkpoint path: %w", err)
	}
	p.MerkleRoot = checkpoint.Root()
	return p, nil
}

// Steps flattens the proof into one path from Leaf to the final root
// (MerkleRoot, or CycleRoot for an unchecked cycle). The chaining step is
// an ordinary step with the previous cycle root on the left, so a verifier
// may fold a single list.
func (p Proof) Steps() []Step {
	steps := make([]Step, 0, len(p.Path)+1+len(p.CheckpointPath))
	steps = append(steps, p.Path...)
	if p.PreviousCycleRoot != "" {
		steps = append(steps, Step{Hash: p.PreviousCycleRoot, Position: Left})
	}
	return append(steps, p.CheckpointPath...)
}

// Verify checks every segment of p. It proves that Leaf is committed by
// MerkleRoot (or by CycleRoot when MerkleRoot is empty); the caller must
// still compare that root with one it trusts, such as the root published
// for the checkpoint.
func Verify(p Proof) error {
	for _, h := range []struct{ name, hash string }{
		{"snapshot_content_hash", p.Leaf},
		{"snapshots_root", p.SnapshotsRoot},
		{"cycle_root", p.CycleRoot},
	} {
		if err := checkHash(h.name, h.hash); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	if p.PreviousCycleRoot != "" {
		if err := checkHash("previous_cycle_root", p.PreviousCycleRoot); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}
	got, err := Fold(p.Leaf, p.Path)
	if err != nil {
		return fmt.Errorf("snapshot path: %w", err)
	}
	if got != p.SnapshotsRoot {
		return fmt.Errorf("%w: snapshot path leads to %s, snapshots_root is %s", ErrMismatch, got, p.SnapshotsRoot)
	}
	if got := Chain(p.PreviousCycleRoot, p.SnapshotsRoot); got != p.CycleRoot {
		return fmt.Errorf("%w: chaining gives %s, cycle_root is %s", ErrMismatch, got, p.CycleRoot)
	}
	if p.MerkleRoot == "" {
		if len(p.CheckpointPath) > 0 {
			return fmt.Errorf("%w: checkpoint_path without merkle_root", ErrMalformed)
		}
		return nil
	}
	if err := checkHash("merkle_root", p.MerkleRoot); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if got, err = Fold(p.CycleRoot, p.CheckpointPath); err != nil {
		return fmt.Errorf("checkpoint path: %w", err)
	}
	if got != p.MerkleRoot {
		return fmt.Errorf("%w: checkpoint path leads to %s, merkle_root is %s", ErrMismatch, got, p.MerkleRoot)
	}
	return nil
}
