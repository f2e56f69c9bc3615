-- A faster leaderboard view, and LEADERBOARD_RANKER applied to it.
--
-- * Speed, independent of retention. 0004's view re-aggregated every overall snapshot
--   ever kept (the all-time prediction count needs them all), joined each to every
--   window and sorted the result: about 200 ms at 1,000 models × 7 days of hourly
--   snapshots (JIT off, as the node runs), growing with snapshot retention (1.2 s at the
--   default 90 days). Now the all-time totals are kept per model by triggers on
--   snapshots (snapshot_totals), and only the snapshots inside the widest window are
--   read, once, from a partial covering index, each put in the narrowest window that
--   holds it (width_bucket) so one hash aggregate yields every window.
-- * A LEADERBOARD_RANKER may re-rank. The refresh job stores the ranker's ranks (and the
--   clock they were computed for) in leaderboard_refresh before it refreshes the view, and
--   the view takes its ranks from there, so everyone who reads `leaderboard` (the report
--   API, the history, a psql user running `SELECT * FROM leaderboard ORDER BY rank`) sees
--   the ranking in force.

-- +goose Up
-- Per-model totals of the overall snapshots (scope_key ''). Triggers keep them exact
-- whoever writes snapshots (the score job, the prune, a psql user): an insert adds, an
-- update adds the difference (a recomputed bucket replaces its count, it is never added
-- twice), a delete subtracts, a truncate clears. Writes that bypass triggers
-- (session_replication_role = replica, DISABLE TRIGGER) need a rebuild:
--   BEGIN; LOCK snapshots IN SHARE MODE; DELETE FROM snapshot_totals;
--   INSERT INTO snapshot_totals SELECT model_id, sum(prediction_count), count(*)
--   FROM snapshots WHERE scope_key = '' GROUP BY model_id; COMMIT;
CREATE TABLE snapshot_totals (
    model_id         text PRIMARY KEY,
    prediction_count bigint NOT NULL,
    snapshot_count   bigint NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION snapshot_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows are applied in model_id order so that concurrent writers lock totals rows in
    -- the same order and cannot deadlock on them.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO snapshot_totals AS t (model_id, prediction_count, snapshot_count)
        SELECT model_id, sum(prediction_count), count(*)
        FROM new_rows WHERE scope_key = ''
        GROUP BY model_id ORDER BY model_id
        ON CONFLICT (model_id) DO UPDATE SET
            prediction_count = t.prediction_count + EXCLUDED.prediction_count,
            snapshot_count = t.snapshot_count + EXCLUDED.snapshot_count;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Most updates (metrics merged into the summary) change no count: nothing is
        -- written then.
        INSERT INTO snapshot_totals AS t (model_id, prediction_count, snapshot_count)
        SELECT model_id, sum(n), sum(c)
        FROM (
            SELECT model_id, prediction_count AS n, 1 AS c FROM new_rows WHERE scope_key = ''
            UNION ALL
            SELECT model_id, -prediction_count, -1 FROM old_rows WHERE scope_key = ''
        ) d
        GROUP BY model_id
        HAVING sum(n) <> 0 OR sum(c) <> 0
        ORDER BY model_id
        ON CONFLICT (model_id) DO UPDATE SET
            prediction_count = t.prediction_count + EXCLUDED.prediction_count,
            snapshot_count = t.snapshot_count + EXCLUDED.snapshot_count;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO snapshot_totals AS t (model_id, prediction_count, snapshot_count)
        SELECT model_id, -sum(prediction_count), -count(*)
        FROM old_rows WHERE scope_key = ''
        GROUP BY model_id ORDER BY model_id
        ON CONFLICT (model_id) DO UPDATE SET
            prediction_count = t.prediction_count + EXCLUDED.prediction_count,
            snapshot_count = t.snapshot_count + EXCLUDED.snapshot_count;
        DELETE FROM snapshot_totals WHERE snapshot_count = 0;
    ELSE
        DELETE FROM snapshot_totals;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- No writer may slip between the triggers' creation and the backfill.
LOCK TABLE snapshots IN SHARE ROW EXCLUSIVE MODE;
CREATE TRIGGER snapshot_totals_insert AFTER INSERT ON snapshots
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION snapshot_totals_apply();
CREATE TRIGGER snapshot_totals_update AFTER UPDATE ON snapshots
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION snapshot_totals_apply();
CREATE TRIGGER snapshot_totals_delete AFTER DELETE ON snapshots
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION snapshot_totals_apply();
CREATE TRIGGER snapshot_totals_truncate AFTER TRUNCATE ON snapshots
    FOR EACH STATEMENT EXECUTE FUNCTION snapshot_totals_apply();
INSERT INTO snapshot_totals (model_id, prediction_count, snapshot_count)
SELECT model_id, sum(prediction_count), count(*)
FROM snapshots WHERE scope_key = ''
GROUP BY model_id;

-- The windows read the overall snapshots of the widest window from this index alone. The
-- rows without a value column (written by hand) are found through the second one, which
-- is empty in normal operation.
CREATE INDEX snapshots_overall_window_idx ON snapshots (period_end)
    INCLUDE (model_id, prediction_count, value) WHERE scope_key = '';
CREATE INDEX snapshots_overall_unvalued_idx ON snapshots (period_end)
    WHERE scope_key = '' AND value IS NULL;

DROP MATERIALIZED VIEW leaderboard;

-- What the last refresh computed the leaderboard for: its clock (as_of; a parameter so
-- tests can pin it) and, when a LEADERBOARD_RANKER ranked it, the ranker's ranks as
-- {model_id: rank}; a model missing from ranks is unranked. NULL ranks: the SQL ranking.
CREATE TABLE leaderboard_refresh (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    as_of timestamptz NOT NULL DEFAULT now(),
    ranks jsonb
);
INSERT INTO leaderboard_refresh DEFAULT VALUES;

-- The leaderboard: one row per model that has at least one overall snapshot, as of the
-- last refresh (leaderboard_refresh.as_of):
--   metrics         the latest snapshot's fields, overlaid with one value per configured
--                   window: the prediction-count-weighted mean of value_field over the
--                   model's snapshots whose period ends inside the window (as_of minus
--                   the window's length), null when there is none, so every window is a
--                   key of every row
--   prediction_count  all the model's overall snapshots' predictions (snapshot_totals)
--   ranking_value   metrics[ranking_key] when it is a number
--   rank            1..N by ranking_value in ranking_direction, ties broken by model_id;
--                   NULL for virtual models (ensembles), models with fewer than
--                   min_predictions_to_rank predictions, and models without a ranking
--                   value
CREATE MATERIALIZED VIEW leaderboard AS
WITH settings AS MATERIALIZED (
    SELECT * FROM leaderboard_settings WHERE id
),
clock AS MATERIALIZED (
    SELECT as_of, ranks FROM leaderboard_refresh WHERE id
),
windows AS MATERIALIZED (
    SELECT w.value ->> 'name' AS name,
           clock.as_of - make_interval(secs => (w.value ->> 'seconds')::integer) AS since
    FROM settings, clock, jsonb_array_elements(settings.windows) AS w
),
-- The window starts, oldest first: width_bucket puts a snapshot in bucket i when it ends
-- at or after the i-th start, so it belongs to the windows at positions 1..i.
bounds AS MATERIALIZED (
    SELECT coalesce(array_agg(since ORDER BY since), '{}') AS starts, min(since) AS oldest
    FROM windows
),
positions AS MATERIALIZED (
    SELECT w.name, count(*)::integer AS pos
    FROM windows w
    JOIN windows o ON o.since <= w.since
    GROUP BY w.name
),
-- Snapshots without a value contribute to no window mean; rows written without the
-- value column (by hand) fall back to reading value_field from the summary.
valued AS (
    SELECT sn.model_id, sn.period_end, sn.prediction_count, sn.value AS v
    FROM snapshots sn, bounds b
    WHERE sn.scope_key = '' AND sn.period_end >= b.oldest AND sn.value IS NOT NULL
    UNION ALL
    SELECT sn.model_id, sn.period_end, sn.prediction_count,
           (sn.result_summary ->> st.value_field)::double precision
    FROM snapshots sn, bounds b, settings st
    WHERE sn.scope_key = '' AND sn.period_end >= b.oldest AND sn.value IS NULL
      AND jsonb_typeof(sn.result_summary -> st.value_field) = 'number'
),
buckets AS MATERIALIZED (
    SELECT v.model_id,
           width_bucket(v.period_end, b.starts) AS bucket,
           sum(v.v * v.prediction_count) AS weighted,
           sum(v.prediction_count) AS n
    FROM valued v, bounds b
    GROUP BY 1, 2
),
window_values AS (
    SELECT s.model_id, jsonb_object_agg(s.name, s.weighted / nullif(s.n, 0)) AS windows
    FROM (
        SELECT b.model_id, p.name,
               sum(b.weighted) FILTER (WHERE b.bucket >= p.pos) AS weighted,
               sum(b.n) FILTER (WHERE b.bucket >= p.pos) AS n
        FROM buckets b CROSS JOIN positions p
        GROUP BY b.model_id, p.name
    ) s
    GROUP BY s.model_id
),
-- Models with no snapshot in any window still carry every window, as null.
no_windows AS (
    SELECT coalesce(jsonb_object_agg(name, NULL::double precision), '{}') AS windows FROM windows
),
entries AS (
    SELECT m.id AS model_id,
           m.name AS model_name,
           m.player_id AS cruncher_id,
           m.player_name AS cruncher_name,
           m.virtual,
           coalesce(latest.result_summary, '{}') || coalesce(wv.windows, nw.windows) AS metrics,
           t.prediction_count,
           latest.period_end AS latest_period_end
    FROM snapshot_totals t
    JOIN models m ON m.id = t.model_id
    CROSS JOIN no_windows nw
    LEFT JOIN window_values wv ON wv.model_id = t.model_id
    LEFT JOIN LATERAL (
        SELECT s.result_summary, s.period_end
        FROM snapshots s
        WHERE s.model_id = t.model_id AND s.scope_key = ''
        ORDER BY s.period_start DESC
        LIMIT 1
    ) latest ON true
    WHERE t.snapshot_count > 0
),
ranked AS (
    SELECT e.*,
           st.ranking_key,
           st.ranking_direction,
           CASE WHEN jsonb_typeof(e.metrics -> st.ranking_key) = 'number'
                THEN (e.metrics ->> st.ranking_key)::double precision END AS ranking_value,
           (NOT e.virtual
            AND e.prediction_count >= st.min_predictions_to_rank
            AND jsonb_typeof(e.metrics -> st.ranking_key) = 'number') AS rankable
    FROM entries e, settings st
)
SELECT r.model_id,
       r.model_name,
       r.cruncher_id,
       r.cruncher_name,
       r.virtual,
       r.metrics,
       r.prediction_count,
       r.latest_period_end,
       r.ranking_key,
       r.ranking_direction,
       r.ranking_value,
       -- The LEADERBOARD_RANKER's ranks when it ranked this refresh (a model it left out
       -- is unranked), else the SQL ranking.
       (CASE
           WHEN clock.ranks IS NOT NULL THEN (clock.ranks ->> r.model_id)::integer
           WHEN r.rankable THEN
               row_number() OVER (
                   PARTITION BY r.rankable
                   ORDER BY CASE WHEN r.ranking_direction = 'desc' THEN -r.ranking_value ELSE r.ranking_value END,
                            r.model_id)
       END)::integer AS rank
FROM ranked r, clock;
-- REFRESH … CONCURRENTLY needs a unique index on plain columns.
CREATE UNIQUE INDEX leaderboard_model_id_idx ON leaderboard (model_id);

-- +goose Down
DROP MATERIALIZED VIEW leaderboard;
DROP TABLE leaderboard_refresh;
DROP INDEX snapshots_overall_unvalued_idx;
DROP INDEX snapshots_overall_window_idx;
DROP TRIGGER snapshot_totals_truncate ON snapshots;
DROP TRIGGER snapshot_totals_delete ON snapshots;
DROP TRIGGER snapshot_totals_update ON snapshots;
DROP TRIGGER snapshot_totals_insert ON snapshots;
DROP FUNCTION snapshot_totals_apply();
DROP TABLE snapshot_totals;
-- The materialized view of 0004, as it was.
CREATE MATERIALIZED VIEW leaderboard AS
WITH settings AS (
    SELECT * FROM leaderboard_settings WHERE id
),
windows AS MATERIALIZED (
    SELECT w.value ->> 'name' AS name,
           now() - make_interval(secs => (w.value ->> 'seconds')::integer) AS since
    FROM settings, jsonb_array_elements(settings.windows) AS w
    UNION ALL
    SELECT '', '-infinity'::timestamptz
),
window_values AS (
    SELECT v.model_id,
           w.name,
           sum(v.prediction_count)::bigint AS n,
           sum(v.v * v.prediction_count)
               / nullif(sum(v.prediction_count) FILTER (WHERE v.v IS NOT NULL), 0) AS value
    FROM (
        SELECT sn.model_id, sn.period_end, sn.prediction_count,
               coalesce(sn.value, CASE WHEN jsonb_typeof(sn.result_summary -> st.value_field) = 'number'
                                       THEN (sn.result_summary ->> st.value_field)::double precision END) AS v
        FROM snapshots sn, settings st
        WHERE sn.scope_key = ''
    ) v
    JOIN windows w ON v.period_end >= w.since
    GROUP BY v.model_id, w.name
),
per_model AS (
    SELECT pm.model_id,
           max(wv.n) FILTER (WHERE w.name = '') AS prediction_count,
           coalesce(jsonb_object_agg(w.name, wv.value) FILTER (WHERE w.name <> ''), '{}') AS windows
    FROM (SELECT DISTINCT model_id FROM window_values) pm
    CROSS JOIN windows w
    LEFT JOIN window_values wv ON wv.model_id = pm.model_id AND wv.name = w.name
    GROUP BY pm.model_id
),
entries AS (
    SELECT m.id AS model_id,
           m.name AS model_name,
           m.player_id AS cruncher_id,
           m.player_name AS cruncher_name,
           m.virtual,
           coalesce(latest.result_summary, '{}') || pm.windows AS metrics,
           pm.prediction_count,
           latest.period_end AS latest_period_end
    FROM per_model pm
    JOIN models m ON m.id = pm.model_id
    LEFT JOIN LATERAL (
        SELECT s.result_summary, s.period_end
        FROM snapshots s
        WHERE s.model_id = pm.model_id AND s.scope_key = ''
        ORDER BY s.period_start DESC
        LIMIT 1
    ) latest ON true
),
ranked AS (
    SELECT e.*,
           st.ranking_key,
           st.ranking_direction,
           CASE WHEN jsonb_typeof(e.metrics -> st.ranking_key) = 'number'
                THEN (e.metrics ->> st.ranking_key)::double precision END AS ranking_value,
           (NOT e.virtual
            AND e.prediction_count >= st.min_predictions_to_rank
            AND jsonb_typeof(e.metrics -> st.ranking_key) = 'number') AS rankable
    FROM entries e, settings st
)
SELECT model_id,
       model_name,
       cruncher_id,
       cruncher_name,
       virtual,
       metrics,
       prediction_count,
       latest_period_end,
       ranking_key,
       ranking_direction,
       ranking_value,
       (CASE WHEN rankable THEN
           row_number() OVER (
               PARTITION BY rankable
               ORDER BY CASE WHEN ranking_direction = 'desc' THEN -ranking_value ELSE ranking_value END,
                        model_id)
       END)::integer AS rank
FROM ranked;
CREATE UNIQUE INDEX leaderboard_model_id_idx ON leaderboard (model_id);
