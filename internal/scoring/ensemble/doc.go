// Package ensemble combines the models' predictions into virtual ensemble
// models (ids "__ensemble_<name>__") whose signal the ensemble-aware
// metrics (contribution, ensemble_correlation) compare against.
//
// An ensemble is configured in crunch_config.yaml as a name, a strategy and
// optional filters:
//
//	ensembles:
//	  - name: top5
//	    strategy: inverse_variance      # or equal_weight
//	    filters: ["min_metric(ic, 0.01)", "top_n(5)"]
//
// [ParseSpec] validates that at start-up. At scoring time the caller
// supplies one [Candidate] per model (its latest metrics and recent
// signals); [Spec.Weights] applies the filters in order and the strategy,
// and [Combine] turns the weights and the models' predictions into the
// ensemble's prediction per key.
//
// The package is pure: no database access. Storing the ensemble as a
// regular model row (which the Python engine forgot, breaking its foreign
// keys) and scoring it like any other model is the caller's job.
package ensemble
