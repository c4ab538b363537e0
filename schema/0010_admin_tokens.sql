-- 0010: tenant admins in the browser, and who started each import.
-- An admin token is a tenant's token that may also sign in to the admins'
-- pages (/admin); a plain service token is for programs only. Operators'
-- tokens (no tenant) are never admin tokens: they choose a tenant instead.
ALTER TABLE api_tokens
    ADD COLUMN admin boolean NOT NULL DEFAULT false,
    ADD CHECK (NOT admin OR tenant_id IS NOT NULL);

-- The token an import was submitted with (NULL: the command line), so the
-- history can say who started it by the token's label.
ALTER TABLE imports
    ADD COLUMN token_id bigint REFERENCES api_tokens (id);
