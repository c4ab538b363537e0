-- 0013: people keep who they are when their e-mail changes (core.identity).
-- An Employee ID per person, unique per tenant when present; how a tenant's
-- imports find the stored person a row is (match_by: 'email' or
-- 'employee-id', remembered per tenant); and what an import needs to change
-- addresses as renames: the keys each row names (its Employee ID and its
-- Previous email, kept even for invalid rows, which still count as in the
-- file for the sweep), the address each renamed person had, and the address
-- each invitation went to.

ALTER TABLE people
    ADD COLUMN employee_id text CHECK (employee_id = btrim(employee_id) AND employee_id <> ''),
    -- NULLs are distinct: people without an id do not collide. Also the index a row's id is
    -- probed by. Led by the id, not the tenant: led by tenant_id it would also be an index of
    -- "every person of a tenant", which stale statistics made the planner scan for the
    -- per-batch lookups by e-mail (see 0007).
    ADD CONSTRAINT people_employee_id_tenant_key UNIQUE (employee_id, tenant_id);

-- NULL: the tenant never chose; its imports match by e-mail.
ALTER TABLE tenants
    ADD COLUMN match_by text CHECK (match_by IN ('email', 'employee-id'));

ALTER TABLE imports
    ADD COLUMN match_by text NOT NULL DEFAULT 'email' CHECK (match_by IN ('email', 'employee-id')),
    -- The file has an Employee ID or a Previous email column: its rows' identities are resolved
    -- (renames applied, conflicts rejected) in one transaction when it starts, at identities_resolved_at.
    ADD COLUMN identity_keys boolean NOT NULL DEFAULT false,
    ADD COLUMN identities_resolved_at timestamptz,
    -- People whose address the import changed, and those of them whose invitation had gone to the old one.
    ADD COLUMN email_changed integer NOT NULL DEFAULT 0,
    ADD COLUMN email_changed_invited integer NOT NULL DEFAULT 0;

ALTER TABLE import_rows
    ADD COLUMN employee_id text,
    ADD COLUMN previous_email text;
-- The sweep asks, for each active person, whether the file names their id or
-- their address as a previous one: one probe each, and no entries at all for
-- files without those columns.
CREATE INDEX import_rows_employee_id ON import_rows (import_id, employee_id) WHERE employee_id IS NOT NULL;
CREATE INDEX import_rows_previous_email ON import_rows (import_id, previous_email)
    WHERE previous_email IS NOT NULL;

-- The address an invitation was sent to (set when it is claimed for sending):
-- one sent to an address its person no longer has can be sent again.
ALTER TABLE invites ADD COLUMN sent_to text;

-- An undo gives the addresses back in a phase of its own, before the other values.
ALTER TABLE undos DROP CONSTRAINT undos_phase_check;
ALTER TABLE undos
    ADD CONSTRAINT undos_phase_check CHECK (phase IN ('created', 'emails', 'changed', 'teams', 'finished')),
    ADD COLUMN emails_restored integer NOT NULL DEFAULT 0;
