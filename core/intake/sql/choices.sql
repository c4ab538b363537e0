-- The admins' column choices, remembered per tenant (producer.choices).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: select_column_choices
SELECT header_key, field FROM column_choices WHERE tenant_id = $1 AND header_key = ANY ($2::text[]);

-- name: upsert_column_choices
-- $2, $3, $4: the header keys, the fields (NULL: ignore) and the headers, in step.
INSERT INTO column_choices (tenant_id, header_key, field, header)
SELECT $1, c.header_key, c.field, c.header
FROM unnest($2::text[], $3::text[], $4::text[]) AS c(header_key, field, header)
ON CONFLICT (tenant_id, header_key) DO UPDATE
SET field = excluded.field, header = excluded.header, updated_at = now();
