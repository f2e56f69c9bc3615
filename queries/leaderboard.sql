-- name: LeaderboardSettingsSync :exec
UPDATE leaderboard_settings SET
    min_predictions_to_rank = @min_predictions_to_rank::integer,
    ranking_direction = @ranking_direction::text,
    ranking_key = @ranking_key::text,
    value_field = @value_field::text,
    windows = @windows::jsonb,
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE id;

-- name: LeaderboardRefresh :exec
REFRESH MATERIALIZED VIEW CONCURRENTLY leaderboard;

-- LeaderboardList reads the view in rank order. Unranked rows (rank 0 here) follow the
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

-- LeaderboardHistoryAppend copies the ranked view into the history table after a refresh.
-- name: LeaderboardHistoryAppend :one
INSERT INTO leaderboards (created_at, entries, meta)
SELECT coalesce(sqlc.narg('now')::timestamptz, now()),
       coalesce(jsonb_agg(to_jsonb(l) ORDER BY l.rank NULLS LAST, l.model_id), '[]'),
       jsonb_build_object('generated_by', 'crunch-node leaderboard_refresh', 'model_count', count(*))
FROM leaderboard l
RETURNING id;

-- name: LeaderboardHistoryPrune :execrows
DELETE FROM leaderboards WHERE created_at < @before::timestamptz;
