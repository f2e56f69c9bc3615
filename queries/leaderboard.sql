-- name: LeaderboardSettingsSync :exec
UPDATE leaderboard_settings SET
    min_predictions_to_rank = @min_predictions_to_rank::integer,
    ranking_direction = @ranking_direction::text,
    ranking_key = @ranking_key::text,
    value_field = @value_field::text,
    windows = @windows::jsonb,
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE id;

-- LeaderboardRefreshPrepare sets what the next refresh computes: the clock, and the
-- LEADERBOARD_RANKER's ranks ({model_id: rank}) or NULL for the SQL ranking.
-- name: LeaderboardRefreshPrepare :exec
UPDATE leaderboard_refresh SET
    as_of = coalesce(sqlc.narg('now')::timestamptz, now()),
    ranks = sqlc.narg('ranks')::jsonb
WHERE id;

-- LeaderboardRefresh recomputes the leaderboard view. CONCURRENTLY: readers keep the
-- previous rows until it commits, never wait.
-- name: LeaderboardRefresh :exec
REFRESH MATERIALIZED VIEW CONCURRENTLY leaderboard;

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
