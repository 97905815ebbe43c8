CREATE TABLE last_seen (
    principal    TEXT PRIMARY KEY,
    last_seen_at TEXT NOT NULL
);
