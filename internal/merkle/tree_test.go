package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testLeaf is sha256("leaf-i"), the leaves of the vectors below.
func testLeaf(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "leaf-%d", i))
	return hex.EncodeToString(sum[:])
}

func testLeaves(n int) []string {
	leaves := make([]string, n)
	for i := range leaves {
		leaves[i] = testLeaf(i)
	}
	return leaves
}

// TestTreeRootVectors uses roots computed by an independent Python
// implementation of the same rules (odd level duplicates its last node).
func TestTreeRootVectors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		leaves int
		root   string
	}{
		{1, "d2dbf006f96dd05044a8f63d8f118f23925ba4cc5750f8b6c8e287fd506c8188"},
		{2, "980cf4c37f098c84759e9e66592cd515f70dc326e907370ff2f0715bb763e3cc"},
		{3, "265ff079294e0d2784c62727e50fa04e8ca20518b21f66b6502f53f54983f42e"},
		{4, "a1f8a519d07b6d53d24b4b4d3e61d60bbc52f3360ad15e0ec858c82b5a01ec95"},
		{5, "fa57cc22cac0962c44e370f83bcc1637a3b93a62bfe42498a67c1fd49690ceba"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.leaves), func(t *testing.T) {
			t.Parallel()
			tree, err := NewTree(testLeaves(tt.leaves))
			require.NoError(t, err)
			require.Equal(t, tt.root, tree.Root())
		})
	}
}

func TestTreeSingleLeafIsRoot(t *testing.T) {
	t.Parallel()

	tree, err := NewTree([]string{testLeaf(7)})
	require.NoError(t, err)
	require.Equal(t, testLeaf(7), tree.Root())
	path, err := tree.Path(0)
	require.NoError(t, err)
	require.Empty(t, path)
}

func TestHashPairHashesHexText(t *testing.T) {
	t.Parallel()

	a, b := testLeaf(0), testLeaf(1)
	sum := sha256.Sum256([]byte(a + b))
	require.Equal(t, hex.EncodeToString(sum[:]), HashPair(a, b))
}

func TestNewTreeErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		leaves []string
		want   error
	}{
		{"empty", nil, ErrEmpty},
		{"short", []string{"abc"}, ErrBadHash},
		{"uppercase", []string{strings.ToUpper(testLeaf(0))}, ErrBadHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewTree(tt.leaves)
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestTreeNodes(t *testing.T) {
	t.Parallel()

	leaves := testLeaves(3)
	tree, err := NewTree(leaves)
	require.NoError(t, err)
	l10 := HashPair(leaves[0], leaves[1])
	l11 := HashPair(leaves[2], leaves[2])
	require.Equal(t, []Node{
		{Hash: leaves[0], Level: 0, Position: 0},
		{Hash: leaves[1], Level: 0, Position: 1},
		{Hash: leaves[2], Level: 0, Position: 2},
		{Children: []int{0, 1}, Hash: l10, Level: 1, Position: 0},
		{Children: []int{2, 2}, Hash: l11, Level: 1, Position: 1},
		{Children: []int{0, 1}, Hash: HashPair(l10, l11), Level: 2, Position: 0},
	}, tree.Nodes())
}

// TestTreePathsFoldToRoot checks every leaf of trees of many sizes, which
// covers duplicated last nodes on several levels at once.
func TestTreePathsFoldToRoot(t *testing.T) {
	t.Parallel()

	for n := 1; n <= 33; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			tree, err := NewTree(testLeaves(n))
			require.NoError(t, err)
			for i := range n {
				path, err := tree.Path(i)
				require.NoError(t, err)
				root, err := Fold(tree.Leaf(i), path)
				require.NoError(t, err)
				require.Equal(t, tree.Root(), root, "leaf %d", i)
			}
			_, err = tree.Path(n)
			require.Error(t, err)
		})
	}
}
