-- The tenant admins' pages (producer.web.admin): the history and the operators' tenant choice.
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: admin_list_imports
-- The history of tenant $1: its imports newest first, at most $2, with ids
-- below $3 when given (the next page), their outcome counts and who started
-- each (the token's label; NULL token: the command line; or the source that fetched it).
SELECT i.id, i.mode, i.undoes, i.state, i.invites, i.filename, i.total_rows, i.invalid_rows,
       i.deactivated, i.created_at, i.finished_at, i.token_id, t.label AS token_label,
       coalesce(c.created, 0)::int AS created, coalesce(c.updated, 0)::int AS updated,
       coalesce(c.unchanged, 0)::int AS unchanged, coalesce(c.skipped, 0)::int AS skipped,
       coalesce(c.failed, 0)::int AS failed, i.source_id, s.name AS source_name
FROM imports i
LEFT JOIN api_tokens t ON t.id = i.token_id
LEFT JOIN sources s ON s.id = i.source_id
LEFT JOIN LATERAL (
    SELECT sum(created) AS created, sum(updated) AS updated, sum(unchanged) AS unchanged,
           sum(skipped) AS skipped, sum(failed) AS failed
    FROM import_counters WHERE import_id = i.id
) c ON true
WHERE i.tenant_id = $1 AND ($3::bigint IS NULL OR i.id < $3)
ORDER BY i.id DESC
LIMIT $2;

-- name: admin_import_starter
-- Who started import $1: its token's id and label (NULL: the command line).
SELECT i.token_id, t.label AS token_label
FROM imports i LEFT JOIN api_tokens t ON t.id = i.token_id
WHERE i.id = $1;

-- name: admin_tenants
-- The tenants an operator may choose from, by id, at most $1.
SELECT id, name FROM tenants ORDER BY id LIMIT $1;
