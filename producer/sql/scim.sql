-- The SCIM service's statements (producer.web.scim). Users are read from the
-- scim_users view (schema/0018_scim_users.sql: what a User shows, without the
-- people DELETEd over SCIM, answered 404). Every statement is bounded to
-- tenant $1.

-- name: scim_people_by_ids
SELECT * FROM scim_users WHERE tenant_id = $1 AND id = ANY($2::bigint[]);

-- name: scim_people_by_key
-- The people at e-mail $2 or with employee id $3 (either may be NULL): the
-- look-ups identity providers start with (userName eq, externalId eq).
SELECT * FROM scim_users WHERE tenant_id = $1 AND (email = lower($2) OR employee_id = $3) ORDER BY id;

-- name: scim_people_page
-- The tenant's people by id after $2, at most $3 (a filter without a key is
-- evaluated on these pages in Python).
SELECT * FROM scim_users WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3;

-- name: scim_import_state
SELECT state FROM imports WHERE id = $1;

-- name: scim_import_rows
SELECT row_number, status, errors, person_id FROM import_rows WHERE import_id = $1 ORDER BY row_number;

-- name: scim_record_deletion
-- Once the DELETE's import has deactivated person $2 (a retry records it again).
INSERT INTO scim_deletions (tenant_id, person_id) VALUES ($1, $2)
ON CONFLICT (person_id, tenant_id) DO UPDATE SET deleted_at = now();

-- name: scim_groups
-- The tenant's teams as Groups ($2: one team's id, NULL: all), with their
-- members (primary or secondary team; active or deactivated, not DELETEd). A
-- team DELETEd over SCIM is hidden while it has no members since.
SELECT t.id, t.name, t.created_at,
       coalesce(array_agg(p.id ORDER BY p.id) FILTER (WHERE p.id IS NOT NULL), '{}') AS member_ids
FROM teams t
LEFT JOIN people p ON p.tenant_id = t.tenant_id
     AND (p.primary_team_id = t.id OR t.id = ANY(p.secondary_team_ids))
     AND NOT (p.status = 'deactivated' AND EXISTS (
         SELECT 1 FROM scim_deletions d
         WHERE d.person_id = p.id AND d.tenant_id = p.tenant_id AND d.deleted_at >= p.deactivated_at))
WHERE t.tenant_id = $1 AND ($2::bigint IS NULL OR t.id = $2)
GROUP BY t.id
HAVING count(p.id) > 0 OR NOT EXISTS (SELECT 1 FROM scim_group_deletions g WHERE g.team_id = t.id AND g.tenant_id = t.tenant_id)
ORDER BY t.id;

-- name: scim_record_group_deletion
INSERT INTO scim_group_deletions (tenant_id, team_id) VALUES ($1, $2)
ON CONFLICT (team_id, tenant_id) DO UPDATE SET deleted_at = now();

-- name: scim_forget_group_deletion
-- A Group POSTed again under a deleted one's name.
DELETE FROM scim_group_deletions WHERE tenant_id = $1 AND team_id = $2;
