package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// knownSnapshot is the vector of docs/merkle.md. Its canonical JSON is written
// out by hand below, and the expected hash was also produced by CPython's
// json.dumps with datetime.isoformat.
func knownSnapshot() Snapshot {
	return Snapshot{
		ModelID:         "model-ä/1",
		PeriodEnd:       time.Date(2026, 1, 2, 4, 4, 5, 123_456_000, time.UTC),
		PeriodStart:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		PredictionCount: 42,
		ResultSummary: map[string]any{
			"count":    3,
			"hit_rate": 0.5,
			"ic":       -0.03,
			"note":     "ok",
			"success":  1.0,
			"tiny":     1e-07,
			"value":    0.125,
		},
	}
}

const (
	knownSnapshotJSON = `{"model_id":"model-\u00e4/1","period_end":"2026-01-02T04:04:05.123456+00:00",` +
		`"period_start":"2026-01-02T03:04:05+00:00","prediction_count":42,"result_summary":` +
		`{"count":3,"hit_rate":0.5,"ic":-0.03,"note":"ok","success":1.0,"tiny":1e-07,"value":0.125}}`
	knownSnapshotHash = "0a67d981e84b6b539c0dce9980d641ba4938dbb91ab2edef4faf6f1f71209b93"
)

func TestSnapshotKnownVector(t *testing.T) {
	t.Parallel()

	sum := sha256.Sum256([]byte(knownSnapshotJSON))
	require.Equal(t, knownSnapshotHash, hex.EncodeToString(sum[:]), "literal and recorded hash agree")

	s := knownSnapshot()
	got, err := s.CanonicalJSON()
	require.NoError(t, err)
	require.Equal(t, knownSnapshotJSON, string(got))
	h, err := s.ContentHash()
	require.NoError(t, err)
	require.Equal(t, knownSnapshotHash, h)
}

// TestSnapshotSummaryFromJSONB covers the path the lead will use: a summary
// read back from jsonb with json.Number keeps its floats, so the hash is
// unchanged.
func TestSnapshotSummaryFromJSONB(t *testing.T) {
	t.Parallel()

	s := knownSnapshot()
	raw, err := Canonical(s.ResultSummary)
	require.NoError(t, err)
	summary, err := decodeJSON(raw)
	require.NoError(t, err)
	s.ResultSummary = summary.(map[string]any) //nolint:forcetypeassert // decodeJSON of an object
	h, err := s.ContentHash()
	require.NoError(t, err)
	require.Equal(t, knownSnapshotHash, h)

	// encoding/json loses ".0" and therefore changes the hash: the hazard
	// documented on Canonical.
	plain, err := json.Marshal(knownSnapshot().ResultSummary)
	require.NoError(t, err)
	require.Contains(t, string(plain), `"success":1,`)
}

func TestSnapshotErrors(t *testing.T) {
	t.Parallel()

	s := knownSnapshot()
	s.ResultSummary = map[string]any{"value": 0.0 / zero()}
	_, err := s.ContentHash()
	require.ErrorIs(t, err, ErrNonFinite)
	require.ErrorContains(t, err, `model "model-ä/1"`)
}

func zero() float64 { return 0 }

func TestSortSnapshots(t *testing.T) {
	t.Parallel()

	s := []Snapshot{{ModelID: "é"}, {ModelID: "b"}, {ModelID: "B"}, {ModelID: "a10"}, {ModelID: "a2"}}
	SortSnapshots(s)
	ids := make([]string, len(s))
	for i := range s {
		ids[i] = s[i].ModelID
	}
	require.Equal(t, []string{"B", "a10", "a2", "b", "é"}, ids)
}

func TestFormatTime(t *testing.T) {
	t.Parallel()

	got, err := FormatTime(time.Date(2026, 5, 6, 7, 8, 9, 10_000, time.UTC))
	require.NoError(t, err)
	require.Equal(t, "2026-05-06T07:08:09.000010+00:00", got)
}

// TestEncodingDocScript runs the verification script printed in
// docs/merkle.md against a proof built here, so the documentation cannot drift
// from the implementation. It needs python3: skipped without it, except in CI.
func TestEncodingDocScript(t *testing.T) {
	t.Parallel()

	python, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the documented verifier needs python3 (CI is set): %v", err)
		}
		t.Skipf("skipping: python3 not found (with CI set this is a failure): %v", err)
	}
	doc, err := os.ReadFile("../../docs/merkle.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(doc), "<!-- verify-script:begin -->\n```python\n")
	require.True(t, ok)
	script, _, ok := strings.Cut(rest, "```\n<!-- verify-script:end -->")
	require.True(t, ok)

	snaps := []Snapshot{knownSnapshot(), knownSnapshot(), knownSnapshot()}
	snaps[0].ModelID, snaps[2].ModelID = "zeta", "alpha"
	snaps[2].ResultSummary = map[string]any{"emoji": "😀", "value": 2.0}
	SortSnapshots(snaps)
	leaves := make([]string, len(snaps))
	for i := range snaps {
		leaves[i], err = snaps[i].ContentHash()
		require.NoError(t, err)
	}
	first, err := NewCycle("", []string{testLeaf(1)})
	require.NoError(t, err)
	cycle, err := NewCycle(first.ChainedRoot, leaves)
	require.NoError(t, err)
	checkpoint, err := NewTree([]string{first.ChainedRoot, cycle.ChainedRoot, testLeaf(2)})
	require.NoError(t, err)

	dir := t.TempDir()
	for i, s := range snaps {
		proof, err := NewProof(cycle, i, checkpoint, 1)
		require.NoError(t, err)
		start, err := FormatTime(s.PeriodStart)
		require.NoError(t, err)
		end, err := FormatTime(s.PeriodEnd)
		require.NoError(t, err)
		summary, err := Canonical(s.ResultSummary)
		require.NoError(t, err)
		snapJSON, err := json.Marshal(map[string]any{
			"model_id": s.ModelID, "period_start": start, "period_end": end,
			"prediction_count": s.PredictionCount, "result_summary": json.RawMessage(summary),
		})
		require.NoError(t, err)
		proofJSON, err := json.Marshal(proof)
		require.NoError(t, err)
		snapPath, proofPath := filepath.Join(dir, fmt.Sprintf("%d.json", i)), filepath.Join(dir, fmt.Sprintf("%d.proof.json", i))
		require.NoError(t, os.WriteFile(snapPath, snapJSON, 0o600))
		require.NoError(t, os.WriteFile(proofPath, proofJSON, 0o600))

		out, err := exec.CommandContext(t.Context(), python, "-c", script, snapPath, proofPath, checkpoint.Root()).CombinedOutput()
		require.NoError(t, err, string(out))
		require.Equal(t, "OK "+checkpoint.Root()+"\n", string(out))

		out, err = exec.CommandContext(t.Context(), python, "-c", script, snapPath, proofPath, testLeaf(3)).CombinedOutput()
		require.Error(t, err)
		require.Contains(t, string(out), "FAIL: root differs")
	}
}
