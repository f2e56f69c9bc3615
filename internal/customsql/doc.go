// Package customsql turns operator-written SQL files into read-only GET endpoints: every
// *.sql file directly in API_ROUTES_DIR (default node/api) becomes GET /custom/<file name
// without .sql>, so an operator can publish a view of the data without writing Go.
//
// This is the one place in the node where SQL comes from files read at run time instead of
// queries/*.sql compiled by sqlc. Nothing here trusts that SQL: each request runs it in a
// READ ONLY transaction that is always rolled back, under SET LOCAL statement_timeout, with
// a cap on the rows read, and a file must be exactly one statement.
//
// A file declares its parameters in the comments at its top, one per line, and uses them
// as sqlc-style named parameters:
//
//	-- description: The best models, optionally just one.
//	-- param: limit int = 10
//	-- param: model_id text
//	SELECT model_id, rank, ranking_value FROM leaderboard
//	WHERE (@model_id::text IS NULL OR model_id = @model_id) ORDER BY rank LIMIT @limit;
//
// The types are int, float, text, bool and timestamptz (ISO 8601); a parameter without a
// default that the request does not give is NULL. Each @name becomes $n cast to its
// declared type; string literals, quoted identifiers, comments and the operators @>, <@ and
// @@ are left alone. Files with problems (an unknown type, a duplicate or undeclared
// parameter, no query, two statements) are reported with file and line by Load and are not
// served; the other files are.
package customsql
