package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crunchnode/crunch-node/internal/dbsqlc"
	"github.com/crunchnode/crunch-node/internal/merkle"
	"github.com/crunchnode/crunch-node/internal/postgres"
)

// ContentHash is a snapshot's Merkle leaf: the SHA-256 of its canonical JSON (docs/merkle.md).
// result_summary is decoded keeping integers and floats apart, because they hash
// differently and a verifier reading the API's JSON keeps them apart too.
func ContentHash(s *dbsqlc.Snapshot) (string, error) {
	summary, err := decodeSummary(s.ResultSummary)
	if err != nil {
		return "", fmt.Errorf("decoding result_summary of %s: %w", s.ID, err)
	}
	return merkle.Snapshot{
		ModelID: s.ModelID, PeriodEnd: s.PeriodEnd, PeriodStart: s.PeriodStart,
		PredictionCount: int64(s.PredictionCount), ResultSummary: summary,
	}.ContentHash()
}

func decodeSummary(raw json.RawMessage) (map[string]any, error) {
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.UseNumber()
	var summary map[string]any
	if err := decoder.Decode(&summary); err != nil {
		return nil, err
	}
	return summary, nil
}

// CommitCycle is the scoring transaction's Merkle step: it stores each written snapshot's
// content hash and commits the cycle's overall snapshots (scope_key ”) to a tree chained
// to the previous cycle. The per-scope snapshots are views of the same scores and are not
// committed separately. Leaves are sorted by model_id, then period_start.
func CommitCycle(ctx context.Context, tx pgx.Tx, snapshots []*dbsqlc.Snapshot, now time.Time) error {
	queries := dbsqlc.New()
	var committed []*dbsqlc.Snapshot
	hashes := map[string]string{}
	stored := &dbsqlc.SnapshotSetContentHashesParams{}
	for _, s := range snapshots {
		hash, err := ContentHash(s)
		if err != nil {
			return err
		}
		stored.IDs = append(stored.IDs, s.ID)
		stored.ContentHashes = append(stored.ContentHashes, hash)
		if s.ScopeKey == "" {
			committed = append(committed, s)
			hashes[s.ID] = hash
		}
	}
	if len(stored.IDs) > 0 {
		if err := queries.SnapshotSetContentHashes(ctx, tx, stored); err != nil {
			return fmt.Errorf("storing content hashes: %w", err)
		}
	}
	if len(committed) == 0 {
		return nil
	}
	sort.Slice(committed, func(i, j int) bool {
		if committed[i].ModelID != committed[j].ModelID {
			return committed[i].ModelID < committed[j].ModelID
		}
		return committed[i].PeriodStart.Before(committed[j].PeriodStart)
	})
	leaves := make([]string, len(committed))
	for i, s := range committed {
		leaves[i] = hashes[s.ID]
	}

	if err := queries.MerkleChainLock(ctx, tx); err != nil {
		return fmt.Errorf("locking the Merkle chain: %w", err)
	}
	var prevID, prevRoot *string
	previous, err := queries.MerkleCycleLatest(ctx, tx)
	switch {
	case err == nil:
		prevID, prevRoot = &previous.ID, &previous.ChainedRoot
		// The chain is ordered by created_at: never stamp a cycle before its predecessor.
		if !now.After(previous.CreatedAt) {
			now = previous.CreatedAt.Add(time.Microsecond)
		}
	case errors.Is(postgres.Interpret(err), postgres.ErrNotFound):
	default:
		return fmt.Errorf("reading the previous cycle: %w", err)
	}
	prev := ""
	if prevRoot != nil {
		prev = *prevRoot
	}
	cycle, err := merkle.NewCycle(prev, leaves)
	if err != nil {
		return fmt.Errorf("building the cycle tree: %w", err)
	}
	id := "CYC_" + strings.Replace(now.UTC().Format("20060102_150405.000000"), ".", "_", 1)
	if _, err := queries.MerkleCycleInsert(ctx, tx, &dbsqlc.MerkleCycleInsertParams{
		ChainedRoot: cycle.ChainedRoot, ID: id, Now: &now, PreviousCycleID: prevID, PreviousCycleRoot: prevRoot,
		SnapshotCount: int32(len(leaves)), SnapshotsRoot: cycle.SnapshotsRoot,
	}); err != nil {
		return fmt.Errorf("storing cycle %s: %w", id, err)
	}
	params := &dbsqlc.MerkleNodeInsertManyParams{CycleID: &id, Now: &now}
	for _, node := range cycle.Tree.Nodes() {
		snapshotID, contentHash := "", ""
		if node.Level == 0 {
			snapshotID, contentHash = committed[node.Position].ID, node.Hash
		}
		appendNode(params, node, snapshotID, contentHash)
	}
	if err := queries.MerkleNodeInsertMany(ctx, tx, params); err != nil {
		return fmt.Errorf("storing the nodes of cycle %s: %w", id, err)
	}
	return nil
}

func appendNode(p *dbsqlc.MerkleNodeInsertManyParams, node merkle.Node, snapshotID, contentHash string) {
	p.Hashes = append(p.Hashes, node.Hash)
	p.Levels = append(p.Levels, int32(node.Level))
	p.Positions = append(p.Positions, int32(node.Position))
	p.SnapshotIDs = append(p.SnapshotIDs, snapshotID)
	p.ContentHashes = append(p.ContentHashes, contentHash)
}

// SnapshotProof is a snapshot's Merkle proof with the ids around it, and the snapshot's
// current content in the exact form its leaf hashes (so the proof can be checked
// without another request, and a snapshot changed after it was committed fails).
type SnapshotProof struct {
	merkle.Proof
	CheckpointID string          `json:"checkpoint_id,omitempty"`
	CycleID      string          `json:"cycle_id"`
	Snapshot     SnapshotContent `json:"snapshot"`
	SnapshotID   string          `json:"snapshot_id"`
}

// SnapshotContent is the five committed fields of a snapshot, timestamps in the
// isoformat form the leaf hashes, result_summary exactly as stored.
type SnapshotContent struct {
	ModelID         string          `json:"model_id"`
	PeriodEnd       string          `json:"period_end"`
	PeriodStart     string          `json:"period_start"`
	PredictionCount int32           `json:"prediction_count"`
	ResultSummary   json.RawMessage `json:"result_summary"`
}

// ErrNotCommitted is returned for a snapshot that no Merkle cycle committed (a per-scope
// snapshot, or one written before Merkle was enabled).
var ErrNotCommitted = errors.New("snapshot is not committed to any Merkle cycle")

// BuildProof assembles the proof of a snapshot from the stored trees: the newest cycle
// that committed it, and the checkpoint that committed that cycle, if any yet.
func BuildProof(ctx context.Context, db dbsqlc.DBTX, snapshotID string) (*SnapshotProof, error) {
	queries := dbsqlc.New()
	snapshot, err := queries.SnapshotGet(ctx, db, snapshotID)
	if err != nil {
		return nil, postgres.Interpret(err)
	}
	leaf, err := queries.MerkleLeafLatest(ctx, db, snapshotID)
	if errors.Is(postgres.Interpret(err), postgres.ErrNotFound) {
		return nil, ErrNotCommitted
	}
	if err != nil {
		return nil, fmt.Errorf("finding the leaf of %s: %w", snapshotID, err)
	}
	cycleRow, err := queries.MerkleCycleGet(ctx, db, *leaf.CycleID)
	if err != nil {
		return nil, fmt.Errorf("reading cycle %s: %w", *leaf.CycleID, err)
	}
	nodes, err := queries.MerkleNodeListCycle(ctx, db, cycleRow.ID)
	if err != nil {
		return nil, fmt.Errorf("reading the tree of cycle %s: %w", cycleRow.ID, err)
	}
	var leaves []string
	for _, n := range nodes {
		if n.Level == 0 {
			leaves = append(leaves, n.Hash)
		}
	}
	prev := ""
	if cycleRow.PreviousCycleRoot != nil {
		prev = *cycleRow.PreviousCycleRoot
	}
	cycle, err := merkle.NewCycle(prev, leaves)
	if err != nil {
		return nil, fmt.Errorf("rebuilding cycle %s: %w", cycleRow.ID, err)
	}
	if cycle.ChainedRoot != cycleRow.ChainedRoot {
		return nil, fmt.Errorf("cycle %s: stored nodes give root %s, the cycle says %s", cycleRow.ID, cycle.ChainedRoot, cycleRow.ChainedRoot)
	}

	out := &SnapshotProof{CycleID: cycleRow.ID, SnapshotID: snapshotID}
	var checkpointTree *merkle.Tree
	cycleIndex := 0
	cpLeaf, err := queries.MerkleCheckpointLeafFind(ctx, db, cycleRow.ChainedRoot)
	switch {
	case err == nil:
		cpNodes, err := queries.MerkleNodeListCheckpoint(ctx, db, *cpLeaf.CheckpointID)
		if err != nil {
			return nil, fmt.Errorf("reading the tree of checkpoint %s: %w", *cpLeaf.CheckpointID, err)
		}
		var cpLeaves []string
		for _, n := range cpNodes {
			if n.Level == 0 {
				cpLeaves = append(cpLeaves, n.Hash)
			}
		}
		if checkpointTree, err = merkle.NewTree(cpLeaves); err != nil {
			return nil, fmt.Errorf("rebuilding checkpoint %s: %w", *cpLeaf.CheckpointID, err)
		}
		cycleIndex = int(cpLeaf.Position)
		out.CheckpointID = *cpLeaf.CheckpointID
	case !errors.Is(postgres.Interpret(err), postgres.ErrNotFound):
		return nil, fmt.Errorf("finding the checkpoint of cycle %s: %w", cycleRow.ID, err)
	}
	if out.Proof, err = merkle.NewProof(cycle, int(leaf.Position), checkpointTree, cycleIndex); err != nil {
		return nil, err
	}
	start, err := merkle.FormatTime(snapshot.PeriodStart)
	if err != nil {
		return nil, err
	}
	end, err := merkle.FormatTime(snapshot.PeriodEnd)
	if err != nil {
		return nil, err
	}
	out.Snapshot = SnapshotContent{
		ModelID: snapshot.ModelID, PeriodEnd: end, PeriodStart: start,
		PredictionCount: snapshot.PredictionCount, ResultSummary: snapshot.ResultSummary,
	}
	return out, nil
}

// VerifyProof checks a proof end to end, including that the snapshot content it carries
// still hashes to its leaf.
func VerifyProof(p *SnapshotProof) error {
	summary, err := decodeSummary(p.Snapshot.ResultSummary)
	if err != nil {
		return fmt.Errorf("decoding result_summary: %w", err)
	}
	start, err := time.Parse(time.RFC3339Nano, p.Snapshot.PeriodStart)
	if err != nil {
		return fmt.Errorf("period_start: %w", err)
	}
	end, err := time.Parse(time.RFC3339Nano, p.Snapshot.PeriodEnd)
	if err != nil {
		return fmt.Errorf("period_end: %w", err)
	}
	leaf, err := merkle.Snapshot{
		ModelID: p.Snapshot.ModelID, PeriodEnd: end, PeriodStart: start,
		PredictionCount: int64(p.Snapshot.PredictionCount), ResultSummary: summary,
	}.ContentHash()
	if err != nil {
		return err
	}
	if leaf != p.Leaf {
		return fmt.Errorf("%w: the snapshot's content hashes to %s, the proof commits %s", merkle.ErrMismatch, leaf, p.Leaf)
	}
	return merkle.Verify(p.Proof)
}
