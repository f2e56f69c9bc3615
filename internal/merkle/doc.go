// Package merkle makes the scoring history tamper-evident: every snapshot is
// hashed into a per-cycle tree, cycles are chained so that history cannot be
// rewritten without changing every later root, and each checkpoint commits to
// the chained cycle roots of its period.
//
// The byte-level encoding is the Python crunch-node engine's (see
// docs/merkle.md), so that roots and proofs produced by either engine can be
// checked by the same twenty-line Python script:
//
//   - hashes are SHA-256 rendered as 64 lowercase hex characters;
//   - a leaf is the hash of a snapshot's canonical JSON ([Canonical],
//     [Snapshot.ContentHash]), which reproduces Python's
//     json.dumps(v, sort_keys=True, separators=(",", ":"));
//   - a parent is the hash of the concatenated hex *text* of its children
//     ([HashPair]), not of the raw digest bytes;
//   - an odd level pairs its last node with itself, and a single leaf is its
//     own root ([NewTree]);
//   - a cycle's chained root is HashPair(previous chained root, snapshots
//     root), or the snapshots root for the very first cycle ([Chain]);
//   - a checkpoint tree is built over chained cycle roots in creation order.
//
// Unlike the Python engine, a [Proof] runs the whole way: from a snapshot
// leaf to the cycle's snapshots root, through the chaining step, and up the
// checkpoint tree to the checkpoint's root, and [Verify] checks all of it.
//
// The package is pure: it never touches the database. Callers load leaf
// hashes in tree order and persist [Tree.Nodes].
package merkle
