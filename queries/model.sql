-- name: ModelUpsert :one
INSERT INTO models (
    deployment_identifier,
    id,
    meta,
    name,
    player_id,
    player_name,
    state,
    virtual,
    updated_at
) VALUES (
    @deployment_identifier::text,
    @id::text,
    coalesce(sqlc.narg('meta')::jsonb, '{}'),
    @name::text,
    @player_id::text,
    @player_name::text,
    @state::text,
    @virtual::boolean,
    coalesce(sqlc.narg('now')::timestamptz, now())
)
ON CONFLICT (id) DO UPDATE SET
    deployment_identifier = EXCLUDED.deployment_identifier,
    meta = models.meta || EXCLUDED.meta,
    name = EXCLUDED.name,
    player_id = EXCLUDED.player_id,
    player_name = EXCLUDED.player_name,
    state = EXCLUDED.state,
    virtual = EXCLUDED.virtual,
    updated_at = EXCLUDED.updated_at
RETURNING *;

-- ModelInsertMissing writes the rows of models a predict tick called before the model
-- source's mirror wrote them (the mirror failed, or had not run yet), so every stored
-- prediction has its model row. Rows that exist are left to the mirror.
-- name: ModelInsertMissing :exec
INSERT INTO models (deployment_identifier, id, name, player_id, player_name, state)
SELECT r.deployment_identifier, r.id, r.name, r.player_id, r.player_name, r.state
FROM ROWS FROM (
    unnest(@deployment_identifiers::text[]),
    unnest(@ids::text[]),
    unnest(@names::text[]),
    unnest(@player_ids::text[]),
    unnest(@player_names::text[]),
    unnest(@states::text[])
) AS r (deployment_identifier, id, name, player_id, player_name, state)
ON CONFLICT (id) DO NOTHING;

-- name: ModelGet :one
SELECT * FROM models WHERE id = @id::text;

-- name: ModelList :many
SELECT * FROM models
WHERE (@include_virtual::boolean OR NOT virtual)
ORDER BY id;

-- ModelStateList is what a predict tick needs of the models it did not hear from, to
-- store them ABSENT: every real model's id and state.
-- name: ModelStateList :many
SELECT id, state FROM models
WHERE NOT virtual
ORDER BY id;

-- ModelSetStateExcept marks every non-virtual model that the source no longer reports as
-- STOPPED; their history stays.
-- name: ModelSetStateExcept :execrows
UPDATE models
SET state = @state::text,
    updated_at = coalesce(sqlc.narg('now')::timestamptz, now())
WHERE NOT virtual
  AND state <> @state::text
  AND NOT (id = ANY(@keep_ids::text[]));
