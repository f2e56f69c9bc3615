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

-- name: ModelGet :one
SELECT * FROM models WHERE id = @id::text;

-- name: ModelList :many
SELECT * FROM models
WHERE (@include_virtual::boolean OR NOT virtual)
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
