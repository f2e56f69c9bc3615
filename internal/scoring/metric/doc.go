// Package metric computes per-model quality metrics over an aggregation
// window's scored predictions: ic, ic_sharpe, mean_return, hit_rate,
// model_correlation, max_drawdown, sortino_ratio, turnover, and, with an
// ensemble, fnc, contribution and ensemble_correlation.
//
// The formulas follow the Python crunch-node engine with its known defects
// fixed:
//
//   - Spearman's ρ uses average ranks for ties (so results do not depend on
//     input order) and is 0 when n < 2 or a side is constant.
//   - Cross-model series are joined on [Point.Key] (the prediction slot and
//     scope), never by position, so a model that skipped one prediction is
//     not compared with its neighbours' next one.
//   - Metrics see the window's full set of scored predictions, not the few
//     scores of one scoring cycle.
//   - model_correlation is the correlation with the leave-one-out
//     consensus (the mean signal of the other models per Key) rather than
//     a mean of all pairwise correlations: linear in the number of models,
//     so 1,000 models × 10,000 predictions stay well under a second.
//   - Non-finite inputs are skipped field by field, and every result is
//     finite; a failing metric reads 0 and is reported, never aborting the
//     other metrics or models.
//   - Unknown metric names are a start-up error ([Registry.Validate]).
//
// Operators add metrics (Starlark functions, wired by the caller) with
// [Registry.Register]; a metric is a [Func] over an [Input], which exposes
// the model's points plus O(1) access to the other models' consensus and
// the ensemble signal for the same Key.
//
// The package is pure: no database access. The score job loads a window's
// scored predictions, calls [Registry.Compute] and stores the values in the
// snapshots.
package metric
