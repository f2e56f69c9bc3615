-- NodeStatus is the one-line summary `crunch-node dev` prints while it runs.
-- name: NodeStatus :one
SELECT
    (SELECT count(*) FROM models WHERE state = 'RUNNING' AND NOT virtual)::bigint AS models_running,
    (SELECT count(*) FROM predictions)::bigint AS predictions,
    (SELECT count(*) FROM predictions WHERE status = 'SCORED')::bigint AS scored,
    (SELECT count(*) FROM predictions WHERE status IN ('FAILED', 'ABSENT', 'UNRESOLVED'))::bigint AS not_scorable;
