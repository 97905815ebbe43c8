CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    created_by  TEXT,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT
);

CREATE TABLE projects (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    created_by   TEXT,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT,
    UNIQUE (workspace_id, name)
);

CREATE TABLE entities (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    entity_type  TEXT NOT NULL,
    name         TEXT NOT NULL,
    parent       TEXT,
    project_id   TEXT REFERENCES projects(id),
    data         TEXT NOT NULL,
    db_version   INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT
);
CREATE UNIQUE INDEX entities_identity ON entities (workspace_id, entity_type, coalesce(parent, ''), name);
CREATE INDEX entities_project ON entities (project_id);

CREATE TABLE role_bindings (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    principal  TEXT NOT NULL,
    workspace  TEXT NOT NULL,
    role       TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    revoked_at TEXT,
    revision   INTEGER NOT NULL
);
CREATE UNIQUE INDEX role_bindings_active_triple ON role_bindings (principal, workspace, role) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX role_bindings_active_name ON role_bindings (name) WHERE revoked_at IS NULL;
CREATE INDEX role_bindings_name ON role_bindings (name);
CREATE INDEX role_bindings_revision ON role_bindings (revision);
CREATE INDEX role_bindings_workspace_active ON role_bindings (workspace, principal) WHERE revoked_at IS NULL;

CREATE TABLE access_keys (
    jti        TEXT PRIMARY KEY,
    metadata   TEXT NOT NULL
);

CREATE TABLE policy_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO policy_state (id, revision) VALUES (1, 0);
