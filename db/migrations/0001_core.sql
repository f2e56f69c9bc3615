-- The core schema of crunch-node. One table per entity of DESIGN §4; the names follow the
-- Python engine so operators recognise them, with its flaws fixed: natural keys are unique,
-- foreign keys are real and stay, statuses are checked, and the three high-volume tables
-- are range-partitioned by day so retention drops whole partitions instead of deleting rows.

-- +goose Up

-- +goose StatementBegin
-- crunch_partition_ensure creates the daily partition of `parent` that holds `day`. Writers
-- call it before inserting a range (backfills reach far into the past) and the maintenance
-- job calls it for the days ahead. The advisory lock makes concurrent callers safe: CREATE
-- TABLE IF NOT EXISTS alone can still collide in the catalog when two sessions race.
CREATE FUNCTION crunch_partition_ensure(parent text, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part text := parent || '_p' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('crunch_partition:' || part));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        part, parent,
        (day::timestamp AT TIME ZONE 'UTC'),
        ((day + 1)::timestamp AT TIME ZONE 'UTC'));
    RETURN true;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- crunch_partition_list returns the daily partitions of `parent` with the day each holds,
-- read from the partition name that crunch_partition_ensure gave it.
CREATE FUNCTION crunch_partition_list(parent text)
RETURNS TABLE (partition_name text, day date)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, to_date(right(c.relname::text, 8), 'YYYYMMDD')
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    WHERE p.relname = parent
      AND c.relname::text ~ ('^' || parent || '_p[0-9]{8}$')
    ORDER BY 2;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- crunch_partition_drop_before drops the daily partitions of `parent` that hold only days
-- before `cutoff`. A partition that other tables still reference is detached first, which
-- makes Postgres check that no referencing row is left (so callers drop referencing
-- partitions first: scores before predictions).
CREATE FUNCTION crunch_partition_drop_before(parent text, cutoff date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    rec record;
    dropped integer := 0;
BEGIN
    FOR rec IN SELECT * FROM crunch_partition_list(parent) WHERE day < cutoff LOOP
        EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, rec.partition_name);
        EXECUTE format('DROP TABLE %I', rec.partition_name);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END;
$$;
-- +goose StatementEnd

-- Models mirror what the model source (orchestrator, static list, local hosts) reports.
-- Ensembles are rows too (virtual = true) so their predictions and snapshots keep real
-- foreign keys; the Python engine inserted ensemble rows that violated them.
CREATE TABLE models (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    player_id             text NOT NULL DEFAULT '',
    player_name           text NOT NULL DEFAULT '',
    deployment_identifier text NOT NULL DEFAULT '',
    state                 text NOT NULL DEFAULT 'UNKNOWN',
    virtual               boolean NOT NULL DEFAULT false,
    meta                  jsonb NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX models_player_id_idx ON models (player_id);

-- Feed records are keyed by their natural key; an upsert of the same candle replaces it.
-- `payload` holds the record's values ({open, high, low, close, volume} or {price}); it is
-- not called `values` because that is an SQL keyword every psql user would have to quote.
CREATE TABLE feed_records (
    source      text NOT NULL,
    subject     text NOT NULL,
    kind        text NOT NULL,
    granularity text NOT NULL,
    ts_event    timestamptz NOT NULL,
    ts_ingested timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL,
    meta        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (source, subject, kind, granularity, ts_event)
) PARTITION BY RANGE (ts_event);

-- One watermark per feed scope: the newest event stored, advanced in the same
-- transaction as the records.
CREATE TABLE feed_ingestion_state (
    source        text NOT NULL,
    subject       text NOT NULL,
    kind          text NOT NULL,
    granularity   text NOT NULL,
    last_event_ts timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    meta          jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (source, subject, kind, granularity)
);

CREATE TABLE backfill_jobs (
    id              text PRIMARY KEY,
    source          text NOT NULL,
    subject         text NOT NULL,
    kind            text NOT NULL,
    granularity     text NOT NULL,
    start_ts        timestamptz NOT NULL,
    end_ts          timestamptz NOT NULL,
    cursor_ts       timestamptz,
    records_written bigint NOT NULL DEFAULT 0,
    pages_fetched   integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (end_ts > start_ts)
);
-- At most one active backfill per feed scope; a second request is a conflict (409). The
-- Python engine blocked every scope, forever, once a job crashed while running.
CREATE UNIQUE INDEX backfill_jobs_active_scope_idx
    ON backfill_jobs (source, subject, kind, granularity)
    WHERE status IN ('pending', 'running');
CREATE INDEX backfill_jobs_created_at_idx ON backfill_jobs (created_at DESC);

-- The model input of one tick, stored once and referenced by every prediction of it.
CREATE TABLE inputs (
    id          text PRIMARY KEY,
    subject     text NOT NULL DEFAULT '',
    raw_data    jsonb NOT NULL,
    meta        jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL
);
CREATE INDEX inputs_received_at_idx ON inputs (received_at);

-- Scheduled predictions from crunch_config.yaml, synchronised by diff on start: scope_key
-- is the natural key, ids never change, removed schedules are deactivated, never deleted.
CREATE TABLE scheduled_prediction_configs (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope_key                   text NOT NULL UNIQUE,
    scope_template              jsonb NOT NULL DEFAULT '{}',
    prediction_interval_seconds integer NOT NULL CHECK (prediction_interval_seconds >= 1),
    resolve_horizon_seconds     integer NOT NULL CHECK (resolve_horizon_seconds >= 0),
    active                      boolean NOT NULL DEFAULT true,
    sort_order                  integer NOT NULL DEFAULT 0,
    meta                        jsonb NOT NULL DEFAULT '{}',
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Predictions are partitioned by their schedule slot. The slot (not performed_at) is the
-- partition key because it is deterministic: the unique key (model, config, slot) must
-- contain the partition key, and a retried predict job has a new performed_at but the
-- same slot, so it cannot store a second prediction.
CREATE TABLE predictions (
    id                   text NOT NULL,
    slot_at              timestamptz NOT NULL,
    input_id             text NOT NULL REFERENCES inputs (id),
    model_id             text NOT NULL REFERENCES models (id),
    prediction_config_id bigint NOT NULL REFERENCES scheduled_prediction_configs (id),
    scope_key            text NOT NULL,
    scope                jsonb NOT NULL DEFAULT '{}',
    status               text NOT NULL
        CHECK (status IN ('PENDING', 'SCORED', 'FAILED', 'ABSENT', 'UNRESOLVED')),
    failed_reason        text,
    exec_time_ms         double precision,
    inference_output     jsonb NOT NULL DEFAULT '{}',
    meta                 jsonb NOT NULL DEFAULT '{}',
    performed_at         timestamptz NOT NULL,
    resolvable_at        timestamptz NOT NULL,
    PRIMARY KEY (id, slot_at),
    UNIQUE (model_id, prediction_config_id, slot_at)
) PARTITION BY RANGE (slot_at);
-- The score job's work list: only PENDING rows, ordered by when they become resolvable.
CREATE INDEX predictions_due_idx ON predictions (resolvable_at) WHERE status = 'PENDING';
CREATE INDEX predictions_model_performed_idx ON predictions (model_id, performed_at);
CREATE INDEX predictions_performed_at_idx ON predictions (performed_at);

-- One score per prediction (the primary key says so; the Python engine only hoped).
-- `success` is what the scorer said, not a constant.
CREATE TABLE scores (
    prediction_id text NOT NULL,
    slot_at       timestamptz NOT NULL,
    model_id      text NOT NULL REFERENCES models (id),
    scope_key     text NOT NULL,
    value         double precision,
    result        jsonb NOT NULL DEFAULT '{}',
    success       boolean NOT NULL,
    failed_reason text,
    performed_at  timestamptz NOT NULL,
    scored_at     timestamptz NOT NULL,
    PRIMARY KEY (prediction_id, slot_at),
    FOREIGN KEY (prediction_id, slot_at) REFERENCES predictions (id, slot_at)
) PARTITION BY RANGE (slot_at);
CREATE INDEX scores_model_performed_idx ON scores (model_id, performed_at);
CREATE INDEX scores_scored_at_idx ON scores (scored_at);

-- Per model (scope_key = '' for all scopes together, else one scope) and time bucket of
-- SNAPSHOT_PERIOD_SECONDS. The open bucket is recomputed every scoring cycle.
CREATE TABLE snapshots (
    id               text PRIMARY KEY,
    model_id         text NOT NULL REFERENCES models (id),
    scope_key        text NOT NULL DEFAULT '',
    period_start     timestamptz NOT NULL,
    period_end       timestamptz NOT NULL,
    prediction_count integer NOT NULL,
    result_summary   jsonb NOT NULL DEFAULT '{}',
    meta             jsonb NOT NULL DEFAULT '{}',
    content_hash     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_id, scope_key, period_start)
);
CREATE INDEX snapshots_period_end_idx ON snapshots (period_end);
CREATE INDEX snapshots_updated_at_idx ON snapshots (updated_at);

-- History of leaderboard refreshes; the current leaderboard is the materialized view.
CREATE TABLE leaderboards (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entries    jsonb NOT NULL DEFAULT '[]',
    meta       jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX leaderboards_created_at_idx ON leaderboards (created_at);

-- One checkpoint per period: the unique period_start makes a second one for the same
-- period impossible, whatever a restart or leader change does.
CREATE TABLE checkpoints (
    id           text PRIMARY KEY,
    period_start timestamptz NOT NULL UNIQUE,
    period_end   timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'PENDING'
        CHECK (status IN ('PENDING', 'SUBMITTED', 'CLAIMABLE', 'PAID')),
    entries      jsonb NOT NULL DEFAULT '[]',
    meta         jsonb NOT NULL DEFAULT '{}',
    merkle_root  text,
    tx_hash      text,
    submitted_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (period_end > period_start)
);
CREATE INDEX checkpoints_status_idx ON checkpoints (status);

CREATE TABLE merkle_cycles (
    id                  text PRIMARY KEY,
    previous_cycle_id   text REFERENCES merkle_cycles (id),
    previous_cycle_root text,
    snapshots_root      text NOT NULL,
    chained_root        text NOT NULL,
    snapshot_count      integer NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX merkle_cycles_created_at_idx ON merkle_cycles (created_at);

-- A node belongs to exactly one tree: a cycle's (over snapshots) or a checkpoint's (over
-- chained cycle roots).
CREATE TABLE merkle_nodes (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cycle_id              text REFERENCES merkle_cycles (id) ON DELETE CASCADE,
    checkpoint_id         text REFERENCES checkpoints (id) ON DELETE CASCADE,
    level                 integer NOT NULL,
    position              integer NOT NULL,
    hash                  text NOT NULL,
    left_child_id         bigint,
    right_child_id        bigint,
    snapshot_id           text REFERENCES snapshots (id) ON DELETE SET NULL,
    snapshot_content_hash text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((cycle_id IS NULL) <> (checkpoint_id IS NULL))
);
CREATE UNIQUE INDEX merkle_nodes_cycle_pos_idx ON merkle_nodes (cycle_id, level, position)
    WHERE cycle_id IS NOT NULL;
CREATE UNIQUE INDEX merkle_nodes_checkpoint_pos_idx ON merkle_nodes (checkpoint_id, level, position)
    WHERE checkpoint_id IS NOT NULL;
CREATE INDEX merkle_nodes_snapshot_idx ON merkle_nodes (snapshot_id) WHERE snapshot_id IS NOT NULL;

-- Partitions for today and the week ahead, so a fresh database accepts data at once; the
-- maintenance job keeps creating them.
SELECT crunch_partition_ensure(t, (now() AT TIME ZONE 'UTC')::date + d)
FROM unnest(ARRAY['feed_records', 'predictions', 'scores']) AS t,
     generate_series(-1, 7) AS d;

-- +goose Down
DROP TABLE merkle_nodes;
DROP TABLE merkle_cycles;
DROP TABLE checkpoints;
DROP TABLE leaderboards;
DROP TABLE snapshots;
DROP TABLE scores;
DROP TABLE predictions;
DROP TABLE scheduled_prediction_configs;
DROP TABLE inputs;
DROP TABLE backfill_jobs;
DROP TABLE feed_ingestion_state;
DROP TABLE feed_records;
DROP TABLE models;
DROP FUNCTION crunch_partition_drop_before(text, date);
DROP FUNCTION crunch_partition_list(text);
DROP FUNCTION crunch_partition_ensure(text, date);
