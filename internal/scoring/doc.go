// Package scoring holds the pure, per-prediction half of the score flow: ground-truth
// resolution, scoring functions, their isolation, start-up checks and snapshot
// aggregation. It has no database access; the score job fetches due predictions and
// feed records with SQL, calls into this package in batches and writes the results
// back.
//
// The pieces, in the order the score job uses them:
//
//   - A [Resolver] (RESOLVE_GROUND_TRUTH) turns the feed records of a prediction's
//     window into a ground-truth dict, or a [Resolution] that says why it cannot
//     (no records yet, stale, zero entry price…). [ResolveDefault] is the Python
//     engine's rule with its bugs fixed; [StarlarkResolver] runs an operator script.
//   - A [Scorer] (SCORING_FUNCTION) turns (prediction, ground truth) into a score dict.
//     Built-ins are pnl, direction, absolute_error, squared_error and crps; operators
//     name a Starlark function instead; Go users add their own to a [Registry].
//   - [ScoreOne] and [ScoreBatch] isolate scorers: whatever a scorer does (error,
//     panic, NaN, wrong shape, script time-out) becomes a failed [Result] for that
//     prediction only. A poison prediction can no longer stop scoring.
//   - [DryRun] and [DetectStub] run at start-up: a scorer that fails on the output
//     schema's defaults stops the process; one that scores everything the same is
//     reported as a probable stub.
//   - An [Aggregator] (MODEL_SCORE_AGGREGATOR) summarises a model's results into a
//     [Snapshot]; [MeanSummary] is the built-in.
//
// Conventions. Every built-in scorer is higher-is-better: error and CRPS scorers
// return the negated loss as value and the loss itself in a separate field, so the
// default descending ranking is right for all of them. Predictions, ground truths and
// scores are map[string]any because that is the contract with scripts and the jsonb
// columns; numbers may be any Go numeric type, and booleans are never numbers.
package scoring
