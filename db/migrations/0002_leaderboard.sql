-- The leaderboard as a materialized view any psql user can read:
--     SELECT * FROM leaderboard ORDER BY rank;
-- Its windows, value field and ranking come from crunch_config.yaml through the one-row
-- table leaderboard_settings, which every node synchronises on start, so changing the
-- windows needs no new migration.

-- +goose Up
CREATE TABLE leaderboard_settings (
    id                      boolean PRIMARY KEY DEFAULT true CHECK (id),
    min_predictions_to_rank integer NOT NULL DEFAULT 0,
    ranking_direction       text NOT NULL DEFAULT 'desc' CHECK (ranking_direction IN ('asc', 'desc')),
    ranking_key             text NOT NULL DEFAULT 'score_recent',
    value_field             text NOT NULL DEFAULT 'value',
    -- [{"name": "score_recent", "seconds": 86400}, …] in column order
    windows                 jsonb NOT NULL DEFAULT '[{"name":"score_recent","seconds":86400},{"name":"score_steady","seconds":259200},{"name":"score_anchor","seconds":604800}]',
    updated_at              timestamptz NOT NULL DEFAULT now()
);
INSERT INTO leaderboard_settings DEFAULT VALUES;

-- One row per model that has at least one overall snapshot:
--   metrics         the latest snapshot's numeric fields, overlaid with one value per
--                   window: the prediction-count-weighted mean of value_field over the
--                   model's snapshots whose period ends inside the window
--   ranking_value   metrics[ranking_key]
--   rank            1..N by ranking_value in ranking_direction, ties broken by model_id;
--                   NULL for virtual models (ensembles), models with fewer than
--                   min_predictions_to_rank scored predictions, and models without a
--                   ranking value
CREATE MATERIALIZED VIEW leaderboard AS
WITH settings AS (
    SELECT * FROM leaderboard_settings WHERE id
),
windows AS (
    SELECT w.value ->> 'name' AS name, (w.value ->> 'seconds')::integer AS seconds
    FROM settings, jsonb_array_elements(settings.windows) AS w
),
window_values AS (
    SELECT sn.model_id,
           w.name,
           sum((sn.result_summary ->> st.value_field)::double precision * sn.prediction_count)
               / nullif(sum(sn.prediction_count) FILTER (WHERE sn.result_summary ? st.value_field), 0) AS value
    FROM settings st
    CROSS JOIN windows w
    JOIN snapshots sn
      ON sn.scope_key = ''
     AND sn.period_end >= now() - make_interval(secs => w.seconds)
    GROUP BY sn.model_id, w.name
),
window_json AS (
    SELECT model_id, jsonb_object_agg(name, value) AS metrics
    FROM window_values
    GROUP BY model_id
),
totals AS (
    SELECT model_id, sum(prediction_count)::bigint AS prediction_count
    FROM snapshots
    WHERE scope_key = ''
    GROUP BY model_id
),
latest AS (
    SELECT DISTINCT ON (model_id) model_id, result_summary, period_end
    FROM snapshots
    WHERE scope_key = ''
    ORDER BY model_id, period_start DESC
),
entries AS (
    SELECT m.id AS model_id,
           m.name AS model_name,
           m.player_id AS cruncher_id,
           m.player_name AS cruncher_name,
           m.virtual,
           coalesce(latest.result_summary, '{}') || coalesce(wj.metrics, '{}') AS metrics,
           t.prediction_count,
           latest.period_end AS latest_period_end
    FROM models m
    JOIN totals t ON t.model_id = m.id
    LEFT JOIN latest ON latest.model_id = m.id
    LEFT JOIN window_json wj ON wj.model_id = m.id
),
ranked AS (
    SELECT e.*,
           st.ranking_key,
           st.ranking_direction,
           (e.metrics ->> st.ranking_key)::double precision AS ranking_value,
           (NOT e.virtual
            AND e.prediction_count >= st.min_predictions_to_rank
            AND (e.metrics ->> st.ranking_key) IS NOT NULL
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

-- REFRESH … CONCURRENTLY needs a unique index; readers are never blocked by a refresh.
CREATE UNIQUE INDEX leaderboard_model_id_idx ON leaderboard (model_id);

-- +goose Down
DROP MATERIALIZED VIEW leaderboard;
DROP TABLE leaderboard_settings;
