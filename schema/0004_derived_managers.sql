-- 0004: a person's manager is derived from their primary team, not stored.
-- The rule ("a person's manager is their primary team's manager; nobody
-- manages themself") was kept as a copy in people.manager_id that finalizing
-- rewrote for every person of the tenant: 113 s of a million-row import's
-- finalize, mostly one foreign-key check per person. Reading it through the
-- team instead (teams.manager_id, one row per team) makes the copy, and any
-- chance of it going stale, disappear. Queries join
-- teams ON id = people.primary_team_id and take NULLIF(manager_id, people.id).
ALTER TABLE people DROP COLUMN manager_id;
