-- The realised outcome each prediction was scored against (the ground truth's
-- actual_return, else profit), kept beside the score so window metrics such as IC and hit
-- rate can be computed from the scores table alone.

-- +goose Up
ALTER TABLE scores ADD COLUMN actual double precision;
CREATE INDEX scores_scored_window_idx ON scores (performed_at) INCLUDE (model_id) WHERE success;

-- +goose Down
DROP INDEX scores_scored_window_idx;
ALTER TABLE scores DROP COLUMN actual;
