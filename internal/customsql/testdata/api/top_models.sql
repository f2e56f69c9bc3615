-- description: The ranked models of the leaderboard, best first, or the row of one model.
-- param: limit int = 10
-- param: model_id text
SELECT model_id, model_name, cruncher_name, rank, ranking_value
FROM leaderboard
WHERE rank IS NOT NULL
  AND (@model_id::text IS NULL OR model_id = @model_id)
ORDER BY rank
LIMIT @limit;
