-- 0016: identity providers provisioning people over SCIM 2.0 (issue 25).
-- A SCIM token is a tenant's token of scope `scim`: it is accepted by
-- /scim/v2 only, and /scim/v2 accepts no other (an identity provider's
-- credential should not also submit files or read imports).
ALTER TABLE api_tokens
    ADD COLUMN scim boolean NOT NULL DEFAULT false,
    ADD CHECK (NOT scim OR (tenant_id IS NOT NULL AND NOT admin));

-- Where an import came from: a file (the CLI, the API, the admins' pages,
-- a scheduled source) or a SCIM request (one import per write, one row per
-- operation). core.vocabulary.ImportOrigin lists the values.
ALTER TABLE imports
    ADD COLUMN origin text NOT NULL DEFAULT 'file' CHECK (origin IN ('file', 'scim'));

-- People DELETEd over SCIM: deactivated by the DELETE's import (never
-- deleted), and answered 404 to SCIM from then on (RFC 7644 §3.6) while they
-- stay deactivated since: a later import that reactivates them (a file, a
-- SCIM POST of their userName, an undo) makes them visible again, and so does
-- a later deactivation of another kind (deactivated_at after deleted_at).
CREATE TABLE scim_deletions (
    tenant_id  text NOT NULL,
    person_id  bigint NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, tenant_id),
    FOREIGN KEY (tenant_id, person_id) REFERENCES people (tenant_id, id)
);

-- Teams DELETEd over SCIM (Groups): emptied by the DELETE's import (teams,
-- like people, are never deleted) and hidden from SCIM while they have no
-- members; a file or a SCIM write that puts someone in the team shows it again.
CREATE TABLE scim_group_deletions (
    tenant_id  text NOT NULL,
    team_id    bigint NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, tenant_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES teams (tenant_id, id)
);

-- A SCIM import that ends done records no event of its own: housekeeping
-- records one import.completed per tenant for the SCIM imports done since its
-- last pass (anchored on the newest; data.scim.imports lists them all), so an
-- identity provider's stream of PATCHes is a webhook every pass, not one each.
ALTER TABLE imports ADD COLUMN scim_reported boolean NOT NULL DEFAULT false;
CREATE INDEX imports_scim_unreported ON imports (id) WHERE origin = 'scim' AND NOT scim_reported;
