-- 0007: the (tenant, id) keys of people and teams, led by id.
-- The composite foreign keys need a unique key on (tenant_id, id). Led by
-- tenant_id, that key was also an index of "every person (team) of a tenant",
-- and on statistics taken before a tenant's first large import (its people
-- and teams estimated at one row) the planner chose it for the per-batch
-- lookups by e-mail and by team name: it read all the tenant's people for each
-- batch and filtered them (20-75 ms a batch, growing with the import), where
-- the (tenant_id, email) and (tenant_id, name_key) keys find each row at once.
-- Led by id, the key serves the foreign keys just as well (PostgreSQL matches
-- a key's columns in any order) and is no use for a tenant-wide scan, so no
-- statistics can make the planner pick it for one.
ALTER TABLE people ADD CONSTRAINT people_id_tenant_key UNIQUE (id, tenant_id);
ALTER TABLE teams ADD CONSTRAINT teams_id_tenant_key UNIQUE (id, tenant_id);

-- Dropping the old keys drops the foreign keys built on them; they come back
-- at once, on the new keys, with their old names.
ALTER TABLE people DROP CONSTRAINT people_tenant_id_id_key CASCADE;
ALTER TABLE teams DROP CONSTRAINT teams_tenant_id_id_key CASCADE;

ALTER TABLE people ADD CONSTRAINT people_tenant_id_primary_team_id_fkey
    FOREIGN KEY (tenant_id, primary_team_id) REFERENCES teams (tenant_id, id);
ALTER TABLE teams ADD CONSTRAINT teams_tenant_id_manager_id_fkey
    FOREIGN KEY (tenant_id, manager_id) REFERENCES people (tenant_id, id);
ALTER TABLE invites ADD CONSTRAINT invites_tenant_id_person_id_fkey
    FOREIGN KEY (tenant_id, person_id) REFERENCES people (tenant_id, id);
