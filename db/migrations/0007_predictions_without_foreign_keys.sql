-- A faster predict tick: predictions lose their three foreign keys.
--
-- Each foreign key is checked row by row: storing a tick's 100 predictions spent 1.2 ms
-- of its 3.4–3.8 ms in the three checks (2 vCPU, docs/benchmarks.md), on the path from
-- a feed record to its committed predictions that has a 10 ms budget. The keys guard
-- nothing the writers do not already guarantee:
-- * input_id: the predict worker stores the input, from the same id, before the
--   predictions (in the same transaction when this was written; since then in its own,
--   committed first).
-- * prediction_config_id: the worker read the schedule row in the same job, and
--   schedules are never deleted (the config sync deactivates them).
-- * model_id: model rows come from the model source's mirror, and a tick that calls a
--   model the mirror has not written yet (it failed, or has not run) writes the row in
--   its own transaction (ModelInsertMissing). Before, such a model failed the whole
--   tick, every other model's prediction with it.
-- Scores lost their foreign keys the same way in 0005.

-- +goose Up
ALTER TABLE predictions DROP CONSTRAINT predictions_input_id_fkey;
ALTER TABLE predictions DROP CONSTRAINT predictions_model_id_fkey;
ALTER TABLE predictions DROP CONSTRAINT predictions_prediction_config_id_fkey;

-- +goose Down
ALTER TABLE predictions ADD FOREIGN KEY (input_id) REFERENCES inputs (id);
ALTER TABLE predictions ADD FOREIGN KEY (model_id) REFERENCES models (id);
ALTER TABLE predictions ADD FOREIGN KEY (prediction_config_id) REFERENCES scheduled_prediction_configs (id);
