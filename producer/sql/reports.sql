-- What an import did: status, failed rows, export (producer.reports, producer.control).
-- Named statements: a block runs from its "-- name: NAME" line to the next.

-- name: get_import
SELECT id, tenant_id, mode, blank_cells, invites, send_at, allow_mass_deactivation, state, filename,
       columns, total_rows, invalid_rows, blank_rows, would_deactivate, deactivated,
       admins_kept, error, created_at, started_at, finished_at, undoes
FROM imports WHERE id = $1;

-- name: failed_rows
SELECT row_number, status, raw, errors FROM import_rows
WHERE import_id = $1 AND status IN ('invalid', 'failed') ORDER BY row_number;

-- name: export_people
SELECT p.email, p.first_name, p.last_name, p.job_title, p.role, p.language, p.location, p.employee_id,
       pt.name AS primary_team,
       (SELECT string_agg(st.name, '; ' ORDER BY ord)
        FROM unnest(p.secondary_team_ids) WITH ORDINALITY AS s(team_id, ord)
        JOIN teams st ON st.id = s.team_id AND st.tenant_id = p.tenant_id) AS secondary_teams,
       p.status, m.email AS manager_email,
       (SELECT i.status FROM invites i WHERE i.person_id = p.id AND i.status <> 'cancelled') AS invite_status
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id AND pt.tenant_id = p.tenant_id
-- A person's manager: their primary team's manager, unless that is themself.
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id) AND m.tenant_id = p.tenant_id
WHERE p.tenant_id = $1
ORDER BY p.email;
