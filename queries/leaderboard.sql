-- name: LeaderboardSettingsSync :exec
UPDATE leaderboard_settings SET
    min_predictions_to_rank = @min_predictions_to_rank::integer,
    ranking_direction = @ranking_direction::text,
    ranking_key = @ranking_key::text,
    value_field = @value_field::text,
    windows = @windows::jsonb,
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE id;

-- LeaderboardRefresh rewrites the leaderboard table from leaderboard_compute: one upsert
-- that leaves unchanged rows alone, and a delete of the models that are no longer listed.
-- Readers keep seeing the previous rows until the transaction commits.
-- name: LeaderboardRefresh :exec
WITH fresh AS MATERIALIZED (
    SELECT c.cruncher_id, c.cruncher_name, c.latest_period_end, c.metrics, c.model_id, c.model_name,
           c.prediction_count, c.rank, c.ranking_direction, c.ranking_key, c.ranking_value, c.virtual
    FROM leaderboard_compute(coalesce(sqlc.narg('now')::timestamptz, now())) AS c
),
gone AS (
    DELETE FROM leaderboard l
    WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.model_id = l.model_id)
)
INSERT INTO leaderboard (
    cruncher_id,
    cruncher_name,
    latest_period_end,
    metrics,
    model_id,
    model_name,
    prediction_count,
    rank,
    ranking_direction,
    ranking_key,
    ranking_value,
    virtual
)
SELECT
    f.cruncher_id,
    f.cruncher_name,
    f.latest_period_end,
    f.metrics,
    f.model_id,
    f.model_name,
    f.prediction_count,
    f.rank,
    f.ranking_direction,
    f.ranking_key,
    f.ranking_value,
    f.virtual
FROM fresh f
ON CONFLICT (model_id) DO UPDATE SET
    cruncher_id = EXCLUDED.cruncher_id,
    cruncher_name = EXCLUDED.cruncher_name,
    latest_period_end = EXCLUDED.latest_period_end,
    metrics = EXCLUDED.metrics,
    model_name = EXCLUDED.model_name,
    prediction_count = EXCLUDED.prediction_count,
    rank = EXCLUDED.rank,
    ranking_direction = EXCLUDED.ranking_direction,
    ranking_key = EXCLUDED.ranking_key,
    ranking_value = EXCLUDED.ranking_value,
    virtual = EXCLUDED.virtual
WHERE (leaderboard.*) IS DISTINCT FROM (EXCLUDED.*);

-- LeaderboardRankSet replaces the ranks with a LEADERBOARD_RANKER's order: the given
-- models get 1..N in the order given, every other row none.
-- name: LeaderboardRankSet :execrows
UPDATE leaderboard l SET rank = r.rank
FROM (
    SELECT lb.model_id, o.rank::integer AS rank
    FROM leaderboard lb
    LEFT JOIN unnest(@model_ids::text[]) WITH ORDINALITY AS o (model_id, rank) ON o.model_id = lb.model_id
) r
WHERE l.model_id = r.model_id
  AND l.rank IS DISTINCT FROM r.rank;

-- LeaderboardList reads the leaderboard in rank order. Unranked rows (rank 0 here) follow the
-- ranked ones.
-- name: LeaderboardList :many
SELECT
    model_id,
    model_name,
    cruncher_id,
    cruncher_name,
    virtual,
    metrics::jsonb AS metrics,
    prediction_count,
    latest_period_end,
    ranking_key,
    ranking_direction,
    coalesce(ranking_value, 0)::double precision AS ranking_value,
    (ranking_value IS NOT NULL)::boolean AS has_ranking_value,
    coalesce(rank, 0)::integer AS rank
FROM leaderboard
WHERE (@include_virtual::boolean OR NOT virtual)
ORDER BY leaderboard.rank NULLS LAST, leaderboard.ranking_value DESC NULLS LAST, model_id;

-- LeaderboardHistoryAppend copies the ranked leaderboard into the history table after a
-- refresh. meta.ranked_by says which ranking is in force ("sql" or the ranker's
-- file.star:function); meta.ranker_error, when present, why a configured ranker's order
-- was not applied.
-- name: LeaderboardHistoryAppend :one
INSERT INTO leaderboards (created_at, entries, meta)
SELECT coalesce(sqlc.narg('now')::timestamptz, now()),
       coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.rank NULLS LAST, l.model_id), '[]'),
       jsonb_strip_nulls(jsonb_build_object(
           'generated_by', 'crunch-node leaderboard_refresh',
           'model_count', count(*),
           'ranked_by', coalesce(sqlc.narg('ranked_by')::text, 'sql'),
           'ranker_error', sqlc.narg('ranker_error')::text))
FROM leaderboard l
RETURNING id;

-- name: LeaderboardHistoryPrune :execrows
DELETE FROM leaderboards WHERE created_at < @before::timestamptz;
