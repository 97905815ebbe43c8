-- The audit trail of access changes: one row per member, role-binding,
-- workspace or access-key change, written in the change's transaction.
-- seq orders events written at the same instant. before_state and
-- after_state are NULL for a creation's before and a deletion's after.
CREATE TABLE audit_events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    occurred_at  TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    on_behalf_of TEXT,
    request_id   TEXT,
    action       TEXT NOT NULL,
    workspace    TEXT,
    target       TEXT NOT NULL,
    before_state JSONB,
    after_state  JSONB
);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at, seq);
CREATE INDEX audit_events_workspace ON audit_events (workspace, occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor, occurred_at);
CREATE INDEX audit_events_target ON audit_events (target, occurred_at);
