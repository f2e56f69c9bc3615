-- description: The best-ranked models of starter-challenge (an example custom endpoint).
-- param: limit int = 10
--
-- Every *.sql file in node/api is served read-only as GET /custom/<file name>, here
-- /custom/top_models?limit=5. Parameters are declared above and used as @name; the admin
-- tier (API_KEY) protects /custom by default.
SELECT model_id, model_name, rank, ranking_value FROM leaderboard WHERE rank IS NOT NULL ORDER BY rank LIMIT @limit
