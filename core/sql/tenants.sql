-- A tenant's record (core.tenants).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: ensure_tenant
-- Tenants are created on their first import, named after their id.
INSERT INTO tenants (id, name) VALUES ($1, $1)
ON CONFLICT (id) DO NOTHING;

-- name: get_tenant
SELECT id, name, timezone, default_language, match_by FROM tenants WHERE id = $1;

-- name: remember_match_key
-- In the transaction that records an import given its match key (core.intake.submit).
UPDATE tenants SET match_by = $2 WHERE id = $1 AND match_by IS DISTINCT FROM $2;

-- name: upsert_tenant
INSERT INTO tenants (id, name, timezone, default_language)
VALUES ($1, coalesce($2, $1), coalesce($3, 'UTC'), coalesce($4, 'en'))
ON CONFLICT (id) DO UPDATE
SET name = coalesce($2, tenants.name), timezone = coalesce($3, tenants.timezone),
    default_language = coalesce($4, tenants.default_language)
RETURNING id, name, timezone, default_language;
