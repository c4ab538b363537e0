-- 0003: bearer tokens of the HTTP API.
-- Only a SHA-256 hash of each token is stored: the token itself is printed
-- once by `bulk-import token create` and cannot be recovered from here.
-- A service token belongs to one tenant; a NULL tenant is an operator's token.

CREATE TABLE api_tokens (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    tenant_id  text REFERENCES tenants (id),
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);
