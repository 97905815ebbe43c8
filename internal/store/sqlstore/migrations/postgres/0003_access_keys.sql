-- The registry of access keys. It replaces the unused placeholder table
-- of 0001. audiences is a JSON array; scopes is a JSON array, or NULL for
-- an unscoped key.
DROP TABLE access_keys;

CREATE TABLE access_keys (
    jti                     TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    description             TEXT NOT NULL DEFAULT '',
    principal               TEXT NOT NULL,
    entity_type             TEXT NOT NULL CHECK (entity_type IN ('USER', 'SERVICE_ACCOUNT')),
    issuer                  TEXT NOT NULL,
    audiences               JSONB NOT NULL,
    scopes                  JSONB,
    status                  TEXT NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'ROTATING', 'REVOKED')),
    created_at              TIMESTAMPTZ NOT NULL,
    created_by              TEXT NOT NULL,
    expires_at              TIMESTAMPTZ,
    grace_period_expires_at TIMESTAMPTZ,
    last_used_at            TIMESTAMPTZ,
    revoked_at              TIMESTAMPTZ,
    replaced_by             TEXT NOT NULL DEFAULT ''
);
CREATE INDEX access_keys_principal ON access_keys (principal, created_at);
CREATE INDEX access_keys_entity_type ON access_keys (entity_type, created_at);
