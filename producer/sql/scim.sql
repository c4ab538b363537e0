-- The SCIM service's statements (producer.web.scim). A person DELETEd over
-- SCIM (scim_deletions, and deactivated since) is answered 404, as RFC 7644
-- §3.6 wants; a person deactivated any other way is a User with active
-- false. Every statement is bounded to tenant $1.

-- name: scim_person_by_id
SELECT p.id, p.email, p.first_name, p.last_name, p.job_title, p.language, p.location, p.employee_id,
       p.status, p.created_at, p.updated_at, pt.name AS primary_team, m.id AS manager_id,
       m.first_name || ' ' || m.last_name AS manager_name
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id AND pt.tenant_id = p.tenant_id
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id) AND m.tenant_id = p.tenant_id
WHERE p.tenant_id = $1 AND p.id = $2
  AND NOT (p.status = 'deactivated' AND EXISTS (
      SELECT 1 FROM scim_deletions d
      WHERE d.person_id = p.id AND d.tenant_id = p.tenant_id AND d.deleted_at >= p.deactivated_at));

-- name: scim_people_by_key
-- The people at e-mail $2 or with employee id $3 (either may be NULL): the
-- look-ups identity providers start with (userName eq, externalId eq).
SELECT p.id, p.email, p.first_name, p.last_name, p.job_title, p.language, p.location, p.employee_id,
       p.status, p.created_at, p.updated_at, pt.name AS primary_team, m.id AS manager_id,
       m.first_name || ' ' || m.last_name AS manager_name
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id AND pt.tenant_id = p.tenant_id
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id) AND m.tenant_id = p.tenant_id
WHERE p.tenant_id = $1 AND (p.email = lower($2) OR p.employee_id = $3)
  AND NOT (p.status = 'deactivated' AND EXISTS (
      SELECT 1 FROM scim_deletions d
      WHERE d.person_id = p.id AND d.tenant_id = p.tenant_id AND d.deleted_at >= p.deactivated_at))
ORDER BY p.id;

-- name: scim_people_page
-- The tenant's people by id after $2, at most $3 (a filter without a key is
-- evaluated on these pages in Python).
SELECT p.id, p.email, p.first_name, p.last_name, p.job_title, p.language, p.location, p.employee_id,
       p.status, p.created_at, p.updated_at, pt.name AS primary_team, m.id AS manager_id,
       m.first_name || ' ' || m.last_name AS manager_name
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id AND pt.tenant_id = p.tenant_id
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id) AND m.tenant_id = p.tenant_id
WHERE p.tenant_id = $1 AND p.id > $2
  AND NOT (p.status = 'deactivated' AND EXISTS (
      SELECT 1 FROM scim_deletions d
      WHERE d.person_id = p.id AND d.tenant_id = p.tenant_id AND d.deleted_at >= p.deactivated_at))
ORDER BY p.id
LIMIT $3;

-- name: scim_import_state
SELECT state FROM imports WHERE id = $1;

-- name: scim_import_rows
SELECT row_number, status, errors, person_id FROM import_rows WHERE import_id = $1 ORDER BY row_number;

-- name: scim_record_deletion
-- Once the DELETE's import has deactivated person $2 (a retry records it again).
INSERT INTO scim_deletions (tenant_id, person_id) VALUES ($1, $2)
ON CONFLICT (person_id, tenant_id) DO UPDATE SET deleted_at = now();
