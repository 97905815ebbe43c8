-- Lists read one page in index order and stop after it (the default
-- order is newest first; ties are broken by id).
CREATE INDEX workspaces_created ON workspaces (created_at, id);
CREATE INDEX workspaces_updated ON workspaces (updated_at, id);
CREATE INDEX projects_workspace_created ON projects (workspace_id, created_at, id);
CREATE INDEX entities_type_created ON entities (workspace_id, entity_type, created_at, id);
