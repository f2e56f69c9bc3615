package merkle

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

type proofBundle struct {
	checkpoint *Tree
	cycles     []*Cycle
}

// setupChain builds cycles of the given sizes, chained in order, and one
// checkpoint over all of them.
func setupChain(t *testing.T, sizes ...int) proofBundle {
	t.Helper()
	var (
		cycles []*Cycle
		prev   string
		roots  []string
		next   int
	)
	for _, n := range sizes {
		leaves := make([]string, n)
		for i := range leaves {
			leaves[i] = testLeaf(next)
			next++
		}
		c, err := NewCycle(prev, leaves)
		require.NoError(t, err)
		cycles = append(cycles, c)
		roots = append(roots, c.ChainedRoot)
		prev = c.ChainedRoot
	}
	checkpoint, err := NewTree(roots)
	require.NoError(t, err)
	return proofBundle{checkpoint: checkpoint, cycles: cycles}
}

// TestChainVectors uses roots computed independently in Python: cycle 1
// over leaves 0..2, cycle 2 over leaves 0..4, checkpoint over both.
func TestChainVectors(t *testing.T) {
	t.Parallel()

	c1, err := NewCycle("", testLeaves(3))
	require.NoError(t, err)
	require.Equal(t, c1.SnapshotsRoot, c1.ChainedRoot)
	c2, err := NewCycle(c1.ChainedRoot, testLeaves(5))
	require.NoError(t, err)
	require.Equal(t, "c4b53d6bad5656be29daf96fb592916fb615c9b429db738569f8b455018625c1", c2.ChainedRoot)
	checkpoint, err := NewTree([]string{c1.ChainedRoot, c2.ChainedRoot})
	require.NoError(t, err)
	require.Equal(t, "077469961ed3d84415923145d22820eb0fcfec8881aad4f38abe9ccc9215b33a", checkpoint.Root())
}

func TestProofsVerifyForEveryLeaf(t *testing.T) {
	t.Parallel()

	b := setupChain(t, 3, 1, 6, 5)
	for ci, c := range b.cycles {
		for li := range c.Tree.Len() {
			t.Run(fmt.Sprintf("cycle%d/leaf%d", ci, li), func(t *testing.T) {
				t.Parallel()
				p, err := NewProof(c, li, b.checkpoint, ci)
				require.NoError(t, err)
				require.NoError(t, Verify(p))
				root, err := Fold(p.Leaf, p.Steps())
				require.NoError(t, err)
				require.Equal(t, b.checkpoint.Root(), root)

				raw, err := json.Marshal(p)
				require.NoError(t, err)
				var back Proof
				require.NoError(t, json.Unmarshal(raw, &back))
				require.NoError(t, Verify(back))
			})
		}
	}
}

func TestProofWithoutCheckpoint(t *testing.T) {
	t.Parallel()

	b := setupChain(t, 2, 3)
	p, err := NewProof(b.cycles[1], 2, nil, 0)
	require.NoError(t, err)
	require.Empty(t, p.MerkleRoot)
	require.NoError(t, Verify(p))
	root, err := Fold(p.Leaf, p.Steps())
	require.NoError(t, err)
	require.Equal(t, b.cycles[1].ChainedRoot, root)
}

func TestNewProofErrors(t *testing.T) {
	t.Parallel()

	b := setupChain(t, 2, 2)
	tests := []struct {
		name       string
		cycleIndex int
		leafIndex  int
		want       error
	}{
		{"cycle index out of range", 5, 0, nil},
		{"leaf index out of range", 1, 2, nil},
		{"wrong cycle index", 0, 0, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewProof(b.cycles[1], tt.leafIndex, b.checkpoint, tt.cycleIndex)
			require.Error(t, err)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
		})
	}
}

// TestVerifyDetectsTampering alters each part of a valid proof in turn.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()

	b := setupChain(t, 3, 4, 2)
	valid, err := NewProof(b.cycles[1], 1, b.checkpoint, 1)
	require.NoError(t, err)
	other := testLeaf(999)

	tests := []struct {
		name   string
		mutate func(p *Proof)
		want   error
	}{
		{"bad position", func(p *Proof) { p.Path[0].Position = "up" }, ErrMalformed},
		{"checkpoint path without root", func(p *Proof) { p.MerkleRoot = "" }, ErrMalformed},
		{"checkpoint sibling", func(p *Proof) { p.CheckpointPath[0].Hash = other }, ErrMismatch},
		{"cycle root", func(p *Proof) { p.CycleRoot = other }, ErrMismatch},
		{"dropped chain link", func(p *Proof) { p.PreviousCycleRoot = "" }, ErrMismatch},
		{"flipped position", func(p *Proof) { p.Path[0].Position = Right }, ErrMismatch},
		{"leaf", func(p *Proof) { p.Leaf = other }, ErrMismatch},
		{"merkle root", func(p *Proof) { p.MerkleRoot = other }, ErrMismatch},
		{"previous cycle root", func(p *Proof) { p.PreviousCycleRoot = other }, ErrMismatch},
		{"sibling", func(p *Proof) { p.Path[1].Hash = other }, ErrMismatch},
		{"snapshots root", func(p *Proof) { p.SnapshotsRoot = other }, ErrMismatch},
		{"uppercase hash", func(p *Proof) { p.Path[0].Hash = "A" + p.Path[0].Hash[1:] }, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := valid
			p.Path = append([]Step(nil), valid.Path...)
			p.CheckpointPath = append([]Step(nil), valid.CheckpointPath...)
			require.Equal(t, Left, valid.Path[0].Position, "fixture: leaf 1 has its sibling on the left")
			tt.mutate(&p)
			require.ErrorIs(t, Verify(p), tt.want)
		})
	}
}
