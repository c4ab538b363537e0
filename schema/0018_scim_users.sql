-- 0018: the people SCIM can see, as Users read them (producer/sql/scim.sql's
-- look-ups by id, by key and by page select from it, so the columns, the
-- derived manager and the DELETEd rule are written once). A person DELETEd
-- over SCIM (scim_deletions, and deactivated since) is not in it: answered
-- 404, as RFC 7644 §3.6 wants; a person deactivated any other way is a User
-- with active false. A plain view: the planner folds it into each look-up,
-- so the tenant and key conditions still use people's indexes.
CREATE VIEW scim_users AS
SELECT p.tenant_id, p.id, p.email, p.first_name, p.last_name, p.job_title, p.language, p.location,
       p.employee_id, p.status, p.created_at, p.updated_at, pt.name AS primary_team, m.id AS manager_id,
       m.first_name || ' ' || m.last_name AS manager_name,
       ARRAY(SELECT st.name FROM unnest(p.secondary_team_ids) WITH ORDINALITY AS s(team_id, ord)
             JOIN teams st ON st.id = s.team_id AND st.tenant_id = p.tenant_id ORDER BY s.ord) AS secondary_teams
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id AND pt.tenant_id = p.tenant_id
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id) AND m.tenant_id = p.tenant_id
WHERE NOT (p.status = 'deactivated' AND EXISTS (
    SELECT 1 FROM scim_deletions d
    WHERE d.person_id = p.id AND d.tenant_id = p.tenant_id AND d.deleted_at >= p.deactivated_at));
