// Package emission turns a ranked leaderboard into reward shares for a
// checkpoint, and governs the checkpoint's payment lifecycle.
//
// Shares are frac64 integers where [Frac64Multiplier] (1,000,000,000) is
// 100 %: integer shares can be summed and paid on chain without rounding
// disputes, and the rounding residue is always given to the first entry so
// that cruncher rewards sum to exactly 1,000,000,000. Percentages convert
// with Python's round-half-even ([PctToFrac64]) so that both engines agree
// to the unit.
//
// Two built-in strategies compute percentages: [Tiers] (35 % to the winner,
// 10 % to ranks 2–5, 5 % to ranks 6–10, any shortfall split equally) and
// [ContributionWeighted] (a composite of rank, ensemble contribution and
// diversity with a 1 % floor). [Build] wraps either into the
// [Checkpoint] document stored with the checkpoint.
//
// The package is pure: no database, no clock.
package emission
