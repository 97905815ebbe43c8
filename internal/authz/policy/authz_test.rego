# opa test unit tests of authz.rego (never shipped in the bundle).
# Run from the repository root: opa test internal/authz/policy
#
# Self-contained: data.authz is replaced key by key with the fixtures below
# (static roles and endpoints copied from internal/authz/data/static.yaml,
# plus test-only roles, endpoints, principals and config).
package authz_test

import data.authz

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

fx_roles := object.union(static_roles, {
	# An include chain of depth 5 and a cycle (the loader rejects cycles; the policy
	# must still terminate).
	"L1": {"includes": ["L2"], "permissions": []},
	"L2": {"includes": ["L3"], "permissions": []},
	"L3": {"includes": ["L4"], "permissions": []},
	"L4": {"includes": ["L5"], "permissions": []},
	"L5": {"permissions": ["projects.create"]},
	"CycA": {"includes": ["CycB"], "permissions": ["projects.read"]},
	"CycB": {"includes": ["CycA"], "permissions": ["projects.list"]},
	"Wild": {"permissions": ["*"]},
	"FileReader": {"permissions": ["files.read"]},
})

fx_endpoints := object.union(static_endpoints, {
	"/apis/files/v2/-/{rest}": {"get": {"permissions": ["files.read"], "scopes": ["files:read"]}},
	"/apis/files/v2/-/special": {"get": {"permissions": []}},
	"/apis/files/v2/{a}/{b}": {"get": {"permissions": ["projects.read"]}},
	"/apis/rank/{a}/x": {"get": {"permissions": ["projects.read"]}},
	"/apis/rank/y/{b}": {"get": {"permissions": ["projects.list"]}},
	"/apis/methods/{a}": {"get": {"permissions": ["projects.read"]}},
	"/apis/methods/only-post": {"post": {"permissions": ["projects.create"]}},
	"/apis/head/x": {"head": {"permissions": ["projects.create"]}, "get": {"permissions": ["projects.read"]}},
	"/apis/cross/{workspace_id}/x": {"get": {"permissions": ["system/workspaces.create", "projects.read"]}},
	"/apis/blocked": {"get": {"permissions": [], "public": true, "deny": true}},
	"/apis/secret/{x}": {"get": {"permissions": [], "public": true}},
	"/apis/open/{x}": {"get": {"permissions": []}},
})

fx_principals := {
	"*": {"workspaces": {"default": ["Editor"], "system": ["Viewer", "WorkspaceCreator"]}},
	"admin@example.com": {"workspaces": {"system": ["PlatformAdmin"]}},
	"alice": {"workspaces": {"ml": ["Admin"]}},
	"bob": {"workspaces": {"ml": ["Viewer"]}},
	"carol@example.com": {"workspaces": {"ml": ["Editor"]}},
	"ml-team": {"workspaces": {"team": ["Editor"], "ml": ["FileReader"]}},
	"chain": {"workspaces": {"ml": ["L1"]}},
	"cyc": {"workspaces": {"ml": ["CycA"]}},
	"wild": {"workspaces": {"ml": ["Wild"]}},
	"service:jobs": {"workspaces": {"ml": ["Viewer"]}},
	"service:ro": {"workspaces": {"-": ["Viewer"]}},
	"a+b": {"workspaces": {"ml": ["Viewer"]}},
}

fx_config := {"denied_prefixes": ["/apis/secret", "/apis/locked/"]}

run(inp) := r if {
	r := authz.allow with input as inp
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as fx_principals
		with data.authz.config as fx_config
}

# Bindings not loaded: no principals key at all.
run_unloaded(inp) := r if {
	r := authz.allow with input as inp
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.config as fx_config
}

reason(inp) := run(inp).reason

req(pid, m, p) := {"principal_id": pid, "method": m, "path": p}

sreq(pid, m, p, scopes) := {"principal_id": pid, "method": m, "path": p, "scopes": scopes}

hp(inp) := r if {
	r := authz.has_permissions.allowed with input as inp
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as fx_principals
}

hr(inp) := r if {
	r := authz.has_role.has_role with input as inp
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as fx_principals
}

ws := "/apis/entities/v2/workspaces"

# Fixture: the roles and endpoints of internal/authz/data/static.yaml. rego_test.go
# (TestRegoUnitFixtureMatchesStatic) fails when they drift apart.
static_roles := {
	"Viewer": {
		"description": "Read access to a workspace",
		"permissions": [
			"workspaces.read",
			"workspaces.list",
			"workspaces.members.list",
			"projects.read",
			"projects.list",
		],
	},
	"Editor": {
		"description": "Viewer plus project management",
		"includes": [
			"Viewer",
		],
		"permissions": [
			"projects.create",
			"projects.update",
			"projects.delete",
		],
	},
	"Admin": {
		"description": "Full control of a workspace and its members",
		"includes": [
			"Editor",
		],
		"permissions": [
			"workspaces.update",
			"workspaces.delete",
			"workspaces.members.create",
			"workspaces.members.update",
			"workspaces.members.delete",
			"workspaces.audit.read",
			"iam.read",
			"iam.list",
			"iam.create",
			"iam.delete",
		],
	},
	"PlatformAdmin": {
		"description": "Bypasses all permission and scope checks (bound in system)",
		"permissions": [
			"iam.bundle.read",
			"platform.admin",
		],
	},
	"WorkspaceCreator": {
		"description": "May create workspaces (bound in system)",
		"permissions": [
			"workspaces.create",
		],
	},
	"JobRunner": {
		"description": "Compatibility role",
		"permissions": [
			"jobs.logs.create",
		],
	},
	"ServiceSystem": {
		"description": "Implicit role of service principals",
		"permissions": [
			"*",
		],
	},
}

static_endpoints := {
	"/health/live": {
		"get": {
			"permissions": [],
			"public": true,
		},
	},
	"/health/ready": {
		"get": {
			"permissions": [],
			"public": true,
		},
	},
	"/status": {
		"get": {
			"permissions": [],
			"public": true,
		},
	},
	"/cluster-info": {
		"get": {
			"permissions": [],
			"public": true,
		},
	},
	"/metrics": {
		"get": {
			"permissions": [],
			"public": true,
		},
	},
	"/apis/auth/discovery": {
		"get": {
			"permissions": [],
			"public": true,
		},
	},
	"/apis/auth/jwks": {
		"get": {
			"permissions": [],
			"public": true,
		},
	},
	"/apis/auth/authenticate": {
		"get": {
			"permissions": [],
			"public": true,
		},
		"post": {
			"permissions": [],
			"public": true,
		},
	},
	"/apis/auth/v2/authz/{entrypoint}": {
		"post": {
			"permissions": [],
			"callers": [
				"service_principal",
			],
		},
	},
	"/apis/auth/v2/iam/role-bindings": {
		"get": {
			"permissions": [
				"iam.list",
			],
			"scopes": [
				"auth:read",
				"platform:read",
			],
		},
		"post": {
			"permissions": [
				"iam.create",
			],
			"scopes": [
				"auth:write",
				"platform:write",
			],
		},
	},
	"/apis/auth/v2/iam/role-bindings/{name}": {
		"get": {
			"permissions": [
				"iam.read",
			],
			"scopes": [
				"auth:read",
				"platform:read",
			],
		},
		"delete": {
			"permissions": [
				"iam.delete",
			],
			"scopes": [
				"auth:write",
				"platform:write",
			],
		},
	},
	"/apis/auth/v2/iam/opa-bundle.tar.gz": {
		"get": {
			"permissions": [
				"iam.bundle.read",
			],
			"scopes": [
				"auth:read",
				"platform:read",
			],
		},
	},
	"/apis/auth/v2/hardening": {
		"get": {
			"permissions": [
				"platform.hardening.read",
			],
			"scopes": [
				"auth:read",
				"platform:read",
			],
		},
	},
	"/apis/auth/v2/self-check": {
		"post": {
			"permissions": [],
			"scopes": [
				"auth:read",
				"platform:read",
			],
		},
	},
	"/apis/auth/v2/access-keys": {
		"get": {
			"permissions": [],
			"scopes": [
				"auth:read",
				"platform:read",
			],
			"callers": [
				"principal",
			],
		},
		"post": {
			"permissions": [],
			"scopes": [
				"auth:write",
				"platform:write",
			],
			"callers": [
				"principal",
			],
		},
	},
	"/apis/auth/v2/access-keys/{jti}": {
		"delete": {
			"permissions": [],
			"scopes": [
				"auth:write",
				"platform:write",
			],
			"callers": [
				"principal",
			],
		},
	},
	"/apis/auth/v2/access-keys/{jti}/suspend": {
		"post": {
			"permissions": [],
			"scopes": [
				"auth:write",
				"platform:write",
			],
			"callers": [
				"principal",
			],
		},
	},
	"/apis/auth/v2/access-keys/{jti}/unsuspend": {
		"post": {
			"permissions": [],
			"scopes": [
				"auth:write",
				"platform:write",
			],
			"callers": [
				"principal",
			],
		},
	},
	"/apis/auth/v2/access-keys/{jti}/rotate": {
		"post": {
			"permissions": [],
			"scopes": [
				"auth:write",
				"platform:write",
			],
			"callers": [
				"principal",
			],
		},
	},
	"/apis/auth/v2/audit-events": {
		"get": {
			"permissions": [],
			"scopes": [
				"auth:read",
				"platform:read",
			],
		},
	},
	"/apis/entities/v2/workspaces": {
		"get": {
			"permissions": [
				"workspaces.list",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
		"post": {
			"permissions": [
				"workspaces.create",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/workspaces/{name}": {
		"get": {
			"permissions": [
				"workspaces.read",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
		"put": {
			"permissions": [
				"workspaces.update",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
		"delete": {
			"permissions": [
				"workspaces.delete",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/workspaces/{workspace}/members": {
		"get": {
			"permissions": [
				"workspaces.members.list",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
		"post": {
			"permissions": [
				"workspaces.members.create",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/workspaces/{workspace}/members/{principal_id}": {
		"put": {
			"permissions": [
				"workspaces.members.update",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
		"delete": {
			"permissions": [
				"workspaces.members.delete",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/workspaces/{workspace}/projects": {
		"get": {
			"permissions": [
				"projects.list",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
		"post": {
			"permissions": [
				"projects.create",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/workspaces/{workspace}/projects/{name}": {
		"get": {
			"permissions": [
				"projects.read",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
		"put": {
			"permissions": [
				"projects.update",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
		"delete": {
			"permissions": [
				"projects.delete",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/workspaces/{workspace}/entities/{entity_type}": {
		"get": {
			"permissions": [
				"entities.read",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
		"post": {
			"permissions": [
				"entities.create",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/workspaces/{workspace}/entities/{entity_type}/{name}": {
		"get": {
			"permissions": [
				"entities.read",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
		"put": {
			"permissions": [
				"entities.update",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
		"delete": {
			"permissions": [
				"entities.delete",
			],
			"scopes": [
				"entities:write",
				"platform:write",
			],
		},
	},
	"/apis/entities/v2/entities/{id}": {
		"get": {
			"permissions": [
				"entities.read",
			],
			"scopes": [
				"entities:read",
				"platform:read",
			],
		},
	},
}

# ---------------------------------------------------------------------------
# Output shape
# ---------------------------------------------------------------------------

test_output_shape_allow if {
	run(req("alice", "GET", "/apis/entities/v2/workspaces/ml")) == {
		"allowed": true,
		"headers": {"X-NMP-Authorized": "true"},
		"reason": "permission_granted",
	}
}

test_output_shape_deny if {
	run(req("bob", "DELETE", "/apis/entities/v2/workspaces/ml")) == {
		"allowed": false,
		"headers": {"X-NMP-Authorized": "false"},
		"reason": "permission_missing",
	}
}

# ---------------------------------------------------------------------------
# Row 1: invalid path (canonicalisation edge cases)
# ---------------------------------------------------------------------------

test_row01_relative_path if reason(req("alice", "GET", "apis/entities/v2/workspaces")) == "invalid_path"

test_row01_empty_path if reason(req("alice", "GET", "")) == "invalid_path"

test_row01_missing_path if reason({"principal_id": "alice", "method": "GET"}) == "invalid_path"

test_row01_non_string_path if reason({"principal_id": "alice", "method": "GET", "path": 42}) == "invalid_path"

test_row01_query_only if reason(req("alice", "GET", "?/apis")) == "invalid_path"

test_row01_double_slash if reason(req("alice", "GET", "/apis//entities/v2/workspaces")) == "invalid_path"

test_row01_leading_double_slash if reason(req("alice", "GET", "//apis/entities/v2/workspaces")) == "invalid_path"

test_row01_two_trailing_slashes if reason(req("alice", "GET", "/apis/entities/v2/workspaces//")) == "invalid_path"

test_row01_dot if reason(req("alice", "GET", "/apis/entities/v2/./workspaces")) == "invalid_path"

test_row01_dotdot if reason(req("alice", "GET", "/apis/entities/v2/x/../workspaces")) == "invalid_path"

test_row01_encoded_dotdot if reason(req("alice", "GET", "/apis/entities/v2/%2e%2E/workspaces")) == "invalid_path"

test_row01_encoded_dot if reason(req("alice", "GET", "/apis/entities/v2/%2E/workspaces")) == "invalid_path"

test_row01_bad_escape_letters if reason(req("alice", "GET", "/apis/entities/v2/workspaces/%zz")) == "invalid_path"

test_row01_bad_escape_short if reason(req("alice", "GET", "/apis/entities/v2/workspaces/ml%2")) == "invalid_path"

test_row01_bad_escape_bare if reason(req("alice", "GET", "/apis/entities/v2/workspaces/%")) == "invalid_path"

test_row01_before_public if reason(req("", "GET", "/health/live/..")) == "invalid_path"

test_row01_even_for_admin if reason(req("admin@example.com", "GET", "/a//b")) == "invalid_path"

# Valid forms.

test_path_root_is_valid if reason(req("alice", "GET", "/")) == "unknown_endpoint"

test_path_trailing_slash_dropped if reason(req("alice", "GET", "/apis/entities/v2/workspaces/ml/")) == "permission_granted"

test_path_query_cut if reason(req("bob", "GET", "/apis/entities/v2/workspaces/ml/projects?page=2&x=/../")) == "permission_granted"

test_path_fragment_cut if reason(req("bob", "GET", "/apis/entities/v2/workspaces/ml/projects#frag/..")) == "permission_granted"

test_path_fragment_before_query if reason(req("bob", "GET", "/apis/entities/v2/workspaces/ml/projects#x?y")) == "permission_granted"

test_path_trailing_slash_before_query if reason(req("bob", "GET", "/apis/entities/v2/workspaces/ml/projects/?q=1")) == "permission_granted"

test_path_percent_decoded_literal if reason(req("bob", "GET", "/apis/entities/v2/workspaces/m%6C/projects")) == "permission_granted"

test_path_percent_decoded_literal_segment if reason(req("bob", "GET", "/apis/entities/v2/%77orkspaces/ml/projects")) == "permission_granted"

# %2F stays inside its segment: "ml%2Fprojects" is one segment, the workspace name.
test_path_encoded_slash_stays_in_segment if reason(req("bob", "GET", "/apis/entities/v2/workspaces/ml%2Fprojects")) == "permission_missing"

test_path_encoded_slash_entity_name if reason(req("service:x", "GET", "/apis/entities/v2/workspaces/ml/entities/t/a%2Fb")) == "permission_granted"

test_path_encoded_slash_too_many if reason(req("service:x", "GET", "/apis/entities/v2/workspaces/ml/entities/t/a/b")) == "service_unknown_path"

# "+" is literal: the workspace "a+b" is not "a b".
test_path_plus_literal if {
	reason(req("a+b", "GET", "/apis/entities/v2/workspaces/ml")) == "permission_granted"
	run(req("service:x", "GET", "/apis/entities/v2/workspaces/a+b/projects")).allowed
}

test_path_plus_not_space if {
	authz.segs == ["apis", "entities", "v2", "workspaces", "a+b", "x y"] with input as req("bob", "GET", "/apis/entities/v2/workspaces/a+b/x%20y")
}

test_path_encoded_plus if {
	authz.segs == ["a+b"] with input as req("bob", "GET", "/a%2Bb")
}

test_canonical_path_of_alias if {
	authz.canonical_path == "/apis/entities/v2/workspaces/ml" with input as req("bob", "GET", "/v2/workspaces/ml/")
}

# ---------------------------------------------------------------------------
# /v2/workspaces alias
# ---------------------------------------------------------------------------

test_alias_list if reason(req("bob", "GET", "/v2/workspaces")) == "permission_granted"

test_alias_trailing_slash if reason(req("bob", "GET", "/v2/workspaces/")) == "permission_granted"

test_alias_create_project_denied if reason(req("bob", "POST", "/v2/workspaces/ml/projects")) == "permission_missing"

test_alias_create_project_allowed if reason(req("carol@example.com", "POST", "/v2/workspaces/ml/projects")) == "permission_granted"

# The alias answers as the full path: every method for one caller, and
# every kind of caller for a read and a write, over every kind of path
# between them. (The whole cross product of paths, methods and callers
# took 90 s on the unindexed data of these tests.)
alias_same(pid, m, p) if run(req(pid, m, concat("", ["/v2/workspaces/ml", p]))) == run(req(pid, m, concat("", ["/apis/entities/v2/workspaces/ml", p])))

test_alias_all_same_methods if {
	every p in ["", "/projects", "/entities/t/e"] {
		every m in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] {
			alias_same("bob", m, p)
		}
	}
}

test_alias_all_same_callers if {
	every p in ["/members", "/projects/p1", "/entities/t", "/x/y"] {
		every pid in ["alice", "service:jobs", "zed", "admin@example.com"] {
			every m in ["GET", "POST"] {
				alias_same(pid, m, p)
			}
		}
	}
}

test_alias_needs_both_segments if reason(req("bob", "GET", "/v2/workspacesx")) == "unknown_endpoint"

test_alias_only_at_start if reason(req("bob", "GET", "/x/v2/workspaces")) == "unknown_endpoint"

# The alias is tested on raw segments: an escaped "workspaces" is not the alias.
test_alias_raw_segments if reason(req("bob", "GET", "/v2/%77orkspaces")) == "unknown_endpoint"

# ---------------------------------------------------------------------------
# Row 1b: permission-shaped scopes
# ---------------------------------------------------------------------------

test_invalid_scope if reason(sreq("alice", "GET", "/apis/entities/v2/workspaces/ml", ["entities:read", "projects.read"])) == "invalid_scope"

test_invalid_scope_on_public if reason(sreq("", "GET", "/health/live", ["a.b"])) == "invalid_scope"

test_invalid_path_before_invalid_scope if reason(sreq("alice", "GET", "/a/../b", ["a.b"])) == "invalid_path"

test_invalid_scope_admin if reason(sreq("admin@example.com", "GET", "/status", ["iam.bundle.read"])) == "invalid_scope"

test_not_permission_shaped_scopes if {
	# Upper case, single segment, trailing dot: not permission-shaped.
	reason(sreq("bob", "GET", "/apis/entities/v2/workspaces/ml", ["Projects.Read", "openid", "a.", ".a", "a..b", "a_b.c"])) == "permission_granted"
}

# ---------------------------------------------------------------------------
# Row 2: bindings not loaded
# ---------------------------------------------------------------------------

test_row02_no_policy_data if run_unloaded(req("alice", "GET", "/apis/entities/v2/workspaces/ml")).reason == "no_policy_data"

test_row02_admin_too if run_unloaded(req("admin@example.com", "GET", "/apis/entities/v2/workspaces")).reason == "no_policy_data"

test_row02_unknown_endpoint if run_unloaded(req("alice", "GET", "/nothing")).reason == "no_policy_data"

test_row02_public_still_allowed if run_unloaded(req("", "GET", "/health/ready")) == {
	"allowed": true,
	"headers": {"X-NMP-Authorized": "true"},
	"reason": "public_endpoint",
}

test_row02_empty_principals_is_loaded if {
	r := authz.allow.reason with input as req("zed", "GET", "/apis/entities/v2/workspaces/ml")
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {}
	r == "permission_missing"
}

# ---------------------------------------------------------------------------
# Rows 3-5: deny flag, denied prefixes, public endpoints
# ---------------------------------------------------------------------------

test_row03_endpoint_denied if reason(req("admin@example.com", "GET", "/apis/blocked")) == "endpoint_denied"

test_row03_endpoint_denied_anonymous if reason(req("", "GET", "/apis/blocked")) == "endpoint_denied"

test_row04_prefix_denied_below if reason(req("", "GET", "/apis/secret/x")) == "prefix_denied"

test_row04_prefix_denied_equal if reason(req("admin@example.com", "GET", "/apis/secret")) == "prefix_denied"

test_row04_prefix_trailing_slash_of_entry if reason(req("service:x", "GET", "/apis/locked")) == "prefix_denied"

test_row04_prefix_is_segment_wise if reason(req("service:x", "GET", "/apis/secretive")) == "service_unknown_path"

test_row04_prefix_on_decoded_path if reason(req("service:x", "GET", "/apis/%73ecret/x")) == "prefix_denied"

test_row04_prefix_encoded_slash if reason(req("service:x", "GET", "/apis%2Fsecret")) == "prefix_denied"

test_row04_slash_denies_all if {
	r := authz.allow.reason with input as req("", "GET", "/health/live")
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as fx_principals
		with data.authz.config as {"denied_prefixes": ["/"]}
	r == "prefix_denied"
}

test_row05_public_anonymous if {
	every p in ["/health/live", "/health/ready", "/status", "/cluster-info", "/metrics", "/apis/auth/discovery", "/apis/auth/jwks", "/apis/auth/authenticate"] {
		reason(req("", "GET", p)) == "public_endpoint"
		reason(req("", "HEAD", p)) == "public_endpoint"
	}
}

test_row05_authenticate_post if reason(req("", "POST", "/apis/auth/authenticate")) == "public_endpoint"

test_row05_public_get_only if reason(req("", "POST", "/health/live")) == "no_principal"

test_row05_method_lower_case if reason(req("", "get", "/metrics")) == "public_endpoint"

# ---------------------------------------------------------------------------
# Row 6: no principal
# ---------------------------------------------------------------------------

test_row06_no_principal if reason(req("", "GET", "/apis/entities/v2/workspaces")) == "no_principal"

test_row06_missing_principal_field if reason({"method": "GET", "path": "/apis/entities/v2/workspaces"}) == "no_principal"

test_row06_email_is_enough if reason({"principal_email": "carol@example.com", "method": "POST", "path": "/apis/entities/v2/workspaces/ml/projects"}) == "permission_granted"

test_row06_group_is_enough if reason({"principal_groups": ["ml-team"], "method": "POST", "path": "/apis/entities/v2/workspaces/team/projects"}) == "permission_granted"

test_row06_empty_groups_dropped if reason({"principal_id": "", "principal_groups": ["", ""], "method": "GET", "path": "/apis/entities/v2/workspaces"}) == "no_principal"

# ---------------------------------------------------------------------------
# Row 7: entity store internals
# ---------------------------------------------------------------------------

test_row07_entities_by_id_user if reason(req("alice", "GET", "/apis/entities/v2/entities/e1")) == "entities_internal"

test_row07_entities_by_id_service if reason(req("service:jobs", "GET", "/apis/entities/v2/entities/e1")) == "permission_granted"

test_row07_entities_by_id_admin if reason(req("admin@example.com", "GET", "/apis/entities/v2/entities/e1")) == "platform_admin"

test_row07_cross_workspace_user if reason(req("alice", "GET", "/apis/entities/v2/workspaces/-/entities/t")) == "entities_internal"

test_row07_cross_workspace_members_user if reason(req("alice", "GET", "/apis/entities/v2/workspaces/-/members")) == "entities_internal"

test_row07_unknown_below_user if reason(req("alice", "GET", "/apis/entities/v2/jobs")) == "entities_internal"

test_row07_unknown_below_service if reason(req("service:jobs", "GET", "/apis/entities/v2/jobs")) == "service_unknown_path"

test_row07_workspaces_patch if reason(req("alice", "PATCH", "/apis/entities/v2/workspaces")) == "entities_internal"

test_row07_workspaces_put if reason(req("alice", "PUT", "/apis/entities/v2/workspaces")) == "entities_internal"

test_row07_workspace_post if reason(req("alice", "POST", "/apis/entities/v2/workspaces/ml")) == "entities_internal"

test_row07_workspace_other_child if reason(req("alice", "GET", "/apis/entities/v2/workspaces/ml/jobs")) == "entities_internal"

test_row07_members_any_method if reason(req("alice", "PATCH", "/apis/entities/v2/workspaces/ml/members")) == "unknown_endpoint"

test_row07_deep_entities if reason(req("alice", "GET", "/apis/entities/v2/workspaces/ml/entities/t/e/x/y")) == "unknown_endpoint"

test_row07_not_below_root if reason(req("alice", "GET", "/apis/entities/v2")) == "unknown_endpoint"

test_row07_trailing_slash_root if reason(req("alice", "GET", "/apis/entities/v2/")) == "unknown_endpoint"

test_row07_dash_workspace_get if reason(req("bob", "GET", "/apis/entities/v2/workspaces/-")) == "cross_workspace_read"

test_row07_dash_workspace_put if reason(req("bob", "PUT", "/apis/entities/v2/workspaces/-")) == "permission_missing"

test_row07_before_no_ep if reason(req("zed", "DELETE", "/apis/entities/v2/entities/e1")) == "entities_internal"

# ---------------------------------------------------------------------------
# Rows 8-9: callers
# ---------------------------------------------------------------------------

test_row08_pdp_user if reason(req("alice", "POST", "/apis/auth/v2/authz/allow")) == "callers_restricted"

test_row08_pdp_service if reason(req("service:gateway", "POST", "/apis/auth/v2/authz/allow")) == "authenticated"

test_row08_pdp_admin if reason(req("admin@example.com", "POST", "/apis/auth/v2/authz/has_role")) == "platform_admin"

test_row09_access_keys_service if reason(req("service:jobs", "GET", "/apis/auth/v2/access-keys")) == "callers_restricted"

test_row09_access_keys_user if reason(req("bob", "POST", "/apis/auth/v2/access-keys/k1/rotate")) == "authenticated"

test_audit_events_any_principal if reason(req("bob", "GET", "/apis/auth/v2/audit-events")) == "authenticated"

test_audit_events_scopes if reason(sreq("bob", "GET", "/apis/auth/v2/audit-events", ["entities:read"])) == "scope_missing"

test_row09_access_keys_user_scopes if reason(sreq("bob", "DELETE", "/apis/auth/v2/access-keys/k1", ["auth:read"])) == "scope_missing"

# ---------------------------------------------------------------------------
# Row 10: the bundle
# ---------------------------------------------------------------------------

bundle := "/apis/auth/v2/iam/opa-bundle.tar.gz"

test_row10_user if reason(req("alice", "GET", bundle)) == "bundle_forbidden"

test_row10_anonymous_is_no_principal if reason(req("", "GET", bundle)) == "no_principal"

test_row10_service if reason(req("service:opa", "GET", bundle)) == "permission_granted"

test_row10_service_wrong_scope if reason(sreq("service:opa", "GET", bundle, ["entities:read"])) == "bundle_forbidden"

test_row10_service_with_explicit_system_binding if {
	r := authz.allow.reason with input as req("service:opa", "GET", bundle)
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {"service:opa": {"workspaces": {"system": ["Viewer"]}}}
	r == "bundle_forbidden"
}

test_row10_admin if reason(req("admin@example.com", "GET", bundle)) == "platform_admin"

test_row10_admin_auth_scope if reason(sreq("admin@example.com", "GET", bundle, ["auth:read"])) == "platform_admin"

test_row10_admin_wrong_scope if reason(sreq("admin@example.com", "GET", bundle, ["entities:read"])) == "bundle_forbidden"

test_row10_any_method if reason(req("alice", "POST", bundle)) == "bundle_forbidden"

# Row 10 uses the bundle endpoint's get scopes whatever the method.
test_row10_other_method_bundle_scopes if {
	reason(sreq("admin@example.com", "POST", bundle, ["entities:read"])) == "bundle_forbidden"
	reason(sreq("admin@example.com", "POST", bundle, ["auth:read"])) == "platform_admin"
	reason(sreq("service:opa", "DELETE", bundle, ["platform:write"])) == "bundle_forbidden"
	reason(sreq("service:opa", "DELETE", bundle, ["platform:read"])) == "service_unknown_path"
}

test_row10_encoded_bundle_path if reason(sreq("admin@example.com", "GET", "/apis/auth/v2/iam/opa-bundle%2Etar.gz", ["entities:read"])) == "bundle_forbidden"

test_row10_trailing_slash if reason(req("alice", "GET", concat("", [bundle, "/"]))) == "bundle_forbidden"

test_row10_operator_role if {
	r := authz.allow.reason with input as sreq("service-account:k1", "GET", bundle, ["platform:read"])
		with data.authz.roles as object.union(fx_roles, {"BundleReader": {"permissions": ["iam.bundle.read"]}})
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {"service-account:k1": {"workspaces": {"system": ["BundleReader"]}}}
	r == "permission_granted"
}

# ---------------------------------------------------------------------------
# Rows 11-13
# ---------------------------------------------------------------------------

test_row11_admin_by_email if reason({"principal_id": "u1", "principal_email": "admin@example.com", "method": "DELETE", "path": "/apis/entities/v2/workspaces/ml"}) == "platform_admin"

test_row11_admin_by_group if {
	r := authz.allow.reason with input as {"principal_id": "u1", "principal_groups": ["admins"], "method": "DELETE", "path": "/apis/entities/v2/workspaces/ml"}
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {"admins": {"workspaces": {"system": ["PlatformAdmin"]}}}
	r == "platform_admin"
}

test_row11_admin_skips_scopes if reason(sreq("admin@example.com", "POST", "/apis/entities/v2/workspaces/ml/projects", ["platform:read"])) == "platform_admin"

test_row11_admin_unknown_endpoint if reason(req("admin@example.com", "GET", "/nowhere")) == "platform_admin"

test_row11_platform_admin_elsewhere_is_not_admin if {
	r := authz.allow.reason with input as req("pa", "DELETE", "/apis/entities/v2/workspaces/ml")
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {"pa": {"workspaces": {"ml": ["PlatformAdmin"]}}}
	r == "permission_missing"
}

# The wildcard principal is not an id: "*" bound PlatformAdmin is not the row-11 bypass.
test_row11_wildcard_platform_admin_not_admin if {
	r := authz.allow.reason with input as req("zed", "DELETE", "/apis/entities/v2/workspaces/ml")
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {"*": {"workspaces": {"system": ["PlatformAdmin"]}}}
	r == "permission_missing"
}

test_row12_service_unknown if reason(req("service:jobs", "GET", "/apis/other/v1/x")) == "service_unknown_path"

test_row12_service_wrong_method if reason(req("service:jobs", "PATCH", "/apis/auth/v2/iam/role-bindings")) == "service_unknown_path"

test_row13_unknown if reason(req("bob", "GET", "/apis/other/v1/x")) == "unknown_endpoint"

test_row13_wrong_method if reason(req("alice", "PATCH", "/apis/auth/v2/iam/role-bindings")) == "unknown_endpoint"

test_row13_empty_method if reason(req("alice", "", "/apis/auth/v2/iam/role-bindings")) == "unknown_endpoint"

# ---------------------------------------------------------------------------
# Row 14: scopes
# ---------------------------------------------------------------------------

test_row14_editor_platform_read_cannot_create if reason(sreq("carol@example.com", "POST", "/apis/entities/v2/workspaces/ml/projects", ["platform:read"])) == "scope_missing"

test_row14_viewer_platform_write_cannot_create if reason(sreq("bob", "POST", "/apis/entities/v2/workspaces/ml/projects", ["platform:write"])) == "permission_missing"

test_row14_editor_platform_write if reason(sreq("carol@example.com", "POST", "/apis/entities/v2/workspaces/ml/projects", ["platform:write"])) == "permission_granted"

test_row14_editor_entities_write if reason(sreq("carol@example.com", "POST", "/apis/entities/v2/workspaces/ml/projects", ["openid", "entities:write"])) == "permission_granted"

test_row14_wrong_service_scope if reason(sreq("carol@example.com", "POST", "/apis/entities/v2/workspaces/ml/projects", ["auth:write"])) == "scope_missing"

test_row14_plain_oidc_scopes_skip if reason(sreq("carol@example.com", "POST", "/apis/entities/v2/workspaces/ml/projects", ["openid", "profile", "email"])) == "permission_granted"

test_row14_no_scopes if reason(sreq("carol@example.com", "POST", "/apis/entities/v2/workspaces/ml/projects", [])) == "permission_granted"

test_row14_endpoint_without_scopes if reason(sreq("bob", "GET", "/apis/open/x", ["entities:read"])) == "authenticated"

test_row14_read_scope_for_head if reason(sreq("bob", "HEAD", "/apis/entities/v2/workspaces/ml/projects", ["entities:read"])) == "permission_granted"

test_row14_exact_match if reason(sreq("bob", "GET", "/apis/entities/v2/workspaces/ml/projects", ["entities:reader", "entities"])) == "scope_missing"

test_row14_self_check_read_scope if reason(sreq("bob", "POST", "/apis/auth/v2/self-check", ["auth:read"])) == "authenticated"

test_row14_self_check_write_scope if reason(sreq("bob", "POST", "/apis/auth/v2/self-check", ["auth:write"])) == "scope_missing"

test_row14_before_permissions if reason(sreq("zed", "DELETE", "/apis/entities/v2/workspaces/ml", ["entities:read"])) == "scope_missing"

# ---------------------------------------------------------------------------
# Rows 15-20
# ---------------------------------------------------------------------------

test_row15_authenticated if reason(req("zed", "POST", "/apis/auth/v2/self-check")) == "authenticated"

test_row16_cross_workspace_read_service if reason(req("service:jobs", "GET", "/apis/entities/v2/workspaces/-/entities/t")) == "cross_workspace_read"

test_row16_cross_workspace_head_service if reason(req("service:jobs", "HEAD", "/apis/entities/v2/workspaces/-/entities/t")) == "cross_workspace_read"

test_row17_service_write_dash if reason(req("service:jobs", "POST", "/apis/entities/v2/workspaces/-/entities/t")) == "permission_granted"

test_row18_service_bound_in_dash if reason(req("service:ro", "POST", "/apis/entities/v2/workspaces/-/entities/t")) == "permission_missing"

test_row19_granted if reason(req("alice", "DELETE", "/apis/entities/v2/workspaces/ml/members/bob")) == "permission_granted"

test_row19_system_for_no_workspace if reason(req("zed", "GET", "/apis/entities/v2/workspaces")) == "permission_granted"

test_row19_workspace_creator if reason(req("zed", "POST", "/apis/entities/v2/workspaces")) == "permission_granted"

test_row20_missing if reason(req("bob", "POST", "/apis/entities/v2/workspaces/ml/projects")) == "permission_missing"

test_row20_admin_of_a_not_b if reason(req("alice", "GET", "/apis/entities/v2/workspaces/other/projects")) == "permission_missing"

test_row20_workspace_admin_not_iam if reason(req("alice", "GET", "/apis/auth/v2/iam/role-bindings")) == "permission_missing"

test_row20_wildcard_default if reason(req("zed", "POST", "/apis/entities/v2/workspaces/default/projects")) == "permission_granted"

test_row20_wildcard_not_ml if reason(req("zed", "GET", "/apis/entities/v2/workspaces/ml/projects")) == "permission_missing"

# ---------------------------------------------------------------------------
# Matching: HEAD fallback, ranking, the "-" rule, method-aware candidates
# ---------------------------------------------------------------------------

test_head_falls_back_to_get if reason(req("bob", "HEAD", "/apis/entities/v2/workspaces/ml/projects")) == "permission_granted"

test_head_entry_preferred if {
	# /apis/head/x has its own head entry (projects.create), which bob lacks.
	reason(req("bob", "HEAD", "/apis/head/x")) == "permission_missing"
	reason(req("bob", "GET", "/apis/head/x")) == "permission_granted"
}

test_ranking_fewest_placeholders if {
	# /apis/files/v2/-/special (0 placeholders) beats /apis/files/v2/-/{rest} and /{a}/{b}.
	reason(req("zed", "GET", "/apis/files/v2/-/special")) == "authenticated"
}

test_ranking_most_literals if {
	# /apis/files/v2/-/{rest} (1 placeholder, 4 literals) beats /apis/files/v2/{a}/{b}.
	reason(req("bob", "GET", "/apis/files/v2/-/x")) == "permission_missing"
	reason({"principal_id": "u", "principal_groups": ["ml-team"], "method": "GET", "path": "/apis/files/v2/-/x"}) == "permission_missing"
}

test_ranking_smallest_pattern_string if {
	authz.matched_pattern == "/apis/rank/y/{b}" with input as req("bob", "GET", "/apis/rank/y/x")
		with data.authz.endpoints as fx_endpoints
}

test_dash_rule_multi_segment if {
	authz.matched_pattern == "/apis/files/v2/-/{rest}" with input as req("bob", "GET", "/apis/files/v2/-/a/b/c")
		with data.authz.endpoints as fx_endpoints
	authz.placeholder_value(4) == "a/b/c" with input as req("bob", "GET", "/apis/files/v2/-/a/b/c")
		with data.authz.endpoints as fx_endpoints
}

test_dash_rule_needs_one_segment if {
	not authz.matched_pattern with input as req("bob", "GET", "/apis/files/v2/-")
		with data.authz.endpoints as fx_endpoints
}

test_dash_rule_literal_dash if {
	# "x" is not "-": /apis/files/v2/{a}/{b} with two segments, but not three.
	authz.matched_pattern == "/apis/files/v2/{a}/{b}" with input as req("bob", "GET", "/apis/files/v2/x/y")
		with data.authz.endpoints as fx_endpoints
	not authz.matched_pattern with input as req("bob", "GET", "/apis/files/v2/x/y/z")
		with data.authz.endpoints as fx_endpoints
}

test_dash_rule_scopes if reason(sreq("service:x", "GET", "/apis/files/v2/-/a/b", ["entities:read"])) == "scope_missing"

test_dash_rule_allowed_for_group if reason({"principal_id": "u", "principal_groups": ["ml-team"], "method": "GET", "path": "/apis/files/v2/-/a/b", "scopes": ["files:read"]}) == "permission_missing"

test_method_aware_candidates if {
	# /apis/methods/only-post has no get: GET matches /apis/methods/{a} (projects.read in
	# system, held through the "*" Viewer binding).
	reason(req("bob", "GET", "/apis/methods/only-post")) == "permission_granted"
	reason(req("bob", "HEAD", "/apis/methods/only-post")) == "permission_granted"
	reason(req("bob", "PUT", "/apis/methods/only-post")) == "unknown_endpoint"
	reason(req("alice", "POST", "/apis/methods/only-post")) == "permission_missing"
	reason(req("service:x", "POST", "/apis/methods/only-post")) == "permission_granted"
	authz.matched_pattern == "/apis/methods/{a}" with input as req("bob", "GET", "/apis/methods/only-post")
		with data.authz.endpoints as fx_endpoints
}

test_workspace_extraction if {
	authz.workspace == "ml" with input as req("bob", "GET", "/apis/entities/v2/workspaces/ml/projects/p")
		with data.authz.endpoints as fx_endpoints
	authz.workspace == "ml" with input as req("bob", "GET", "/apis/entities/v2/workspaces/ml")
		with data.authz.endpoints as fx_endpoints
	authz.workspace == "w2" with input as req("bob", "GET", "/apis/cross/w2/x")
		with data.authz.endpoints as fx_endpoints
	not authz.workspace with input as req("bob", "GET", "/apis/auth/v2/iam/role-bindings/x")
		with data.authz.endpoints as fx_endpoints
}

# "w2/p" permissions are checked in w2: system/workspaces.create via the "*" binding.
test_cross_workspace_permission if {
	reason(req("alice", "GET", "/apis/cross/ml/x")) == "permission_granted"
	reason(req("bob", "GET", "/apis/cross/ml/x")) == "permission_granted"
	r := authz.allow.reason with input as req("alice", "GET", "/apis/cross/ml/x")
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {"alice": {"workspaces": {"ml": ["Admin"]}}}
	r == "permission_missing"
}

# ---------------------------------------------------------------------------
# Roles: includes, wildcard permission, groups, "*" principal, services
# ---------------------------------------------------------------------------

test_includes_transitive if {
	reason(req("alice", "GET", "/apis/entities/v2/workspaces/ml/projects")) == "permission_granted"
	reason(req("alice", "PUT", "/apis/entities/v2/workspaces/ml/projects/p")) == "permission_granted"
}

test_include_chain_depth5 if reason(req("chain", "POST", "/apis/entities/v2/workspaces/ml/projects")) == "permission_granted"

test_include_chain_no_extra if reason(req("chain", "GET", "/apis/entities/v2/workspaces/ml/projects")) == "permission_missing"

test_include_cycle_terminates if {
	reason(req("cyc", "GET", "/apis/entities/v2/workspaces/ml/projects")) == "permission_granted"
	reason(req("cyc", "GET", "/apis/entities/v2/workspaces/ml/projects/p")) == "permission_granted"
	reason(req("cyc", "POST", "/apis/entities/v2/workspaces/ml/projects")) == "permission_missing"
}

test_wildcard_permission if reason(req("wild", "DELETE", "/apis/entities/v2/workspaces/ml/entities/t/e")) == "permission_granted"

test_unknown_role_holds_nothing if {
	r := authz.allow.reason with input as req("u", "GET", "/apis/entities/v2/workspaces/ml")
		with data.authz.roles as fx_roles
		with data.authz.endpoints as fx_endpoints
		with data.authz.principals as {"u": {"workspaces": {"ml": ["Ghost"]}}}
	r == "permission_missing"
}

test_groups_union if {
	inp := {"principal_id": "bob", "principal_groups": ["ml-team"], "method": "POST", "path": "/apis/entities/v2/workspaces/team/projects"}
	reason(inp) == "permission_granted"
}

test_email_union if {
	inp := {"principal_id": "bob", "principal_email": "carol@example.com", "method": "POST", "path": "/apis/entities/v2/workspaces/ml/projects"}
	reason(inp) == "permission_granted"
}

test_wildcard_principal_applies_to_everyone if reason(req("bob", "POST", "/apis/entities/v2/workspaces/default/projects")) == "permission_granted"

test_service_system_implicit if reason(req("service:x", "DELETE", "/apis/entities/v2/workspaces/ml")) == "permission_granted"

test_service_explicit_binding_replaces_service_system if reason(req("service:jobs", "DELETE", "/apis/entities/v2/workspaces/ml")) == "permission_missing"

test_service_system_elsewhere if reason(req("service:jobs", "DELETE", "/apis/entities/v2/workspaces/other")) == "permission_granted"

# "*" bindings are not explicit bindings of the service.
test_service_system_with_wildcard_binding if reason(req("service:jobs", "DELETE", "/apis/entities/v2/workspaces/default")) == "permission_granted"

test_service_account_is_not_service if reason(req("service-account:k1", "DELETE", "/apis/entities/v2/workspaces/other")) == "permission_missing"

test_service_prefix_case_sensitive if reason(req("Service:x", "GET", "/apis/entities/v2/entities/e")) == "entities_internal"

# ---------------------------------------------------------------------------
# Envoy input form
# ---------------------------------------------------------------------------

envoy(method, path, headers) := {"attributes": {"request": {"http": {"method": method, "path": path, "headers": headers}}}}

test_envoy_allowed if reason(envoy("POST", "/apis/entities/v2/workspaces/ml/projects?x=1", {"x-nmp-principal-id": "carol@example.com"})) == "permission_granted"

test_envoy_groups_trimmed if reason(envoy("POST", "/v2/workspaces/team/projects", {"x-nmp-principal-id": "u", "x-nmp-principal-groups": " other , ,ml-team "})) == "permission_granted"

test_envoy_email if reason(envoy("POST", "/v2/workspaces/ml/projects", {"x-nmp-principal-id": "u", "x-nmp-principal-email": "carol@example.com"})) == "permission_granted"

test_envoy_scopes if {
	reason(envoy("POST", "/v2/workspaces/ml/projects", {"x-nmp-principal-id": "carol@example.com", "x-nmp-scopes": "openid  platform:read"})) == "scope_missing"
	reason(envoy("POST", "/v2/workspaces/ml/projects", {"x-nmp-principal-id": "carol@example.com", "x-nmp-scopes": " openid entities:write "})) == "permission_granted"
	reason(envoy("POST", "/v2/workspaces/ml/projects", {"x-nmp-principal-id": "carol@example.com", "x-nmp-scopes": "projects.create"})) == "invalid_scope"
}

test_envoy_anonymous if reason(envoy("GET", "/apis/entities/v2/workspaces", {})) == "no_principal"

test_envoy_public if reason(envoy("GET", "/health/live", {"x-nmp-principal-id": "u"})) == "public_endpoint"

test_envoy_no_headers if reason({"attributes": {"request": {"http": {"method": "GET", "path": "/status"}}}}) == "public_endpoint"

test_envoy_form_wins_over_direct if {
	inp := object.union(envoy("GET", "/apis/entities/v2/workspaces", {}), {"principal_id": "alice"})
	reason(inp) == "no_principal"
}

test_envoy_invalid_path if reason(envoy("GET", "/a/%zz", {"x-nmp-principal-id": "u"})) == "invalid_path"

# ---------------------------------------------------------------------------
# has_permissions
# ---------------------------------------------------------------------------

test_hp_granted if hp({"principal_id": "alice", "workspace": "ml", "permissions": ["projects.create", "workspaces.members.update"]})

test_hp_all_required if not hp({"principal_id": "carol@example.com", "workspace": "ml", "permissions": ["projects.create", "workspaces.members.update"]})

test_hp_email if hp({"principal_id": "x", "principal_email": "carol@example.com", "workspace": "ml", "permissions": ["projects.create"]})

test_hp_groups if hp({"principal_id": "x", "principal_groups": ["ml-team"], "workspace": "team", "permissions": ["projects.delete"]})

test_hp_wildcard_principal if hp({"principal_id": "x", "workspace": "default", "permissions": ["projects.delete"]})

test_hp_platform_admin if hp({"principal_id": "admin@example.com", "workspace": "anything", "permissions": ["nope.nope"]})

test_hp_ignores_scopes if hp({"principal_id": "alice", "workspace": "ml", "permissions": ["projects.create"], "scopes": ["platform:read"]})

test_hp_service_system if hp({"principal_id": "service:x", "workspace": "ml", "permissions": ["entities.delete"]})

test_hp_service_explicit if not hp({"principal_id": "service:jobs", "workspace": "ml", "permissions": ["entities.delete"]})

test_hp_on_behalf_of_user if hp({"principal_id": "service:x", "on_behalf_of_principal_id": "alice", "workspace": "ml", "permissions": ["workspaces.delete"]})

test_hp_on_behalf_of_no_service_system if not hp({"principal_id": "service:x", "on_behalf_of_principal_id": "bob", "workspace": "ml", "permissions": ["projects.create"]})

test_hp_on_behalf_of_service_id_ignored if not hp({"principal_id": "alice", "on_behalf_of_principal_id": "bob", "workspace": "ml", "permissions": ["projects.create"]})

test_hp_on_behalf_of_email if hp({"principal_id": "service:x", "on_behalf_of_principal_id": "u", "principal_email": "carol@example.com", "workspace": "ml", "permissions": ["projects.create"]})

test_hp_on_behalf_of_admin if hp({"principal_id": "service:x", "on_behalf_of_principal_id": "admin@example.com", "workspace": "ml", "permissions": ["x.y"]})

test_hp_empty_on_behalf_of_ignored if hp({"principal_id": "service:x", "on_behalf_of_principal_id": "", "workspace": "ml", "permissions": ["entities.delete"]})

test_hp_cross_workspace_permission if hp({"principal_id": "bob", "workspace": "ml", "permissions": ["system/workspaces.create", "projects.read"]})

test_hp_empty_permissions if not hp({"principal_id": "wild", "workspace": "ml", "permissions": []})

test_hp_missing_workspace if not hp({"principal_id": "alice", "permissions": ["projects.read"]})

test_hp_missing_permissions if not hp({"principal_id": "alice", "workspace": "ml"})

test_hp_email_without_principal_id if hp({"principal_email": "carol@example.com", "workspace": "ml", "permissions": ["projects.read"]})

test_hp_no_ids if not hp({"principal_id": "", "workspace": "default", "permissions": ["projects.read"]})

test_hp_not_loaded if {
	not authz.has_permissions.allowed with input as {"principal_id": "service:x", "workspace": "ml", "permissions": ["projects.read"]}
		with data.authz.roles as fx_roles
}

test_hp_star_satisfies_undeclared if hp({"principal_id": "service:x", "workspace": "ml", "permissions": ["not.declared"]})

test_hp_non_string_permission if not hp({"principal_id": "wild", "workspace": "ml", "permissions": [1]})

test_hp_result_shape if {
	r := authz.has_permissions with input as {}
	r == {"allowed": false}
}

# ---------------------------------------------------------------------------
# has_role
# ---------------------------------------------------------------------------

test_hr_direct if hr({"principal_id": "alice", "workspace": "ml", "role": "Admin"})

test_hr_no_includes if not hr({"principal_id": "alice", "workspace": "ml", "role": "Editor"})

test_hr_other_workspace if not hr({"principal_id": "alice", "workspace": "default", "role": "Admin"})

test_hr_email if hr({"principal_id": "x", "principal_email": "carol@example.com", "workspace": "ml", "role": "Editor"})

test_hr_group if hr({"principal_id": "x", "principal_groups": ["ml-team"], "workspace": "team", "role": "Editor"})

test_hr_no_wildcard_fallback if not hr({"principal_id": "zed", "workspace": "default", "role": "Editor"})

test_hr_wildcard_itself if hr({"principal_id": "*", "workspace": "default", "role": "Editor"})

test_hr_no_platform_admin_shortcut if not hr({"principal_id": "admin@example.com", "workspace": "ml", "role": "Viewer"})

test_hr_platform_admin_in_system if hr({"principal_id": "admin@example.com", "workspace": "system", "role": "PlatformAdmin"})

test_hr_no_service_system if not hr({"principal_id": "service:x", "workspace": "ml", "role": "ServiceSystem"})

test_hr_result_shape if {
	r := authz.has_role with input as {}
	r == {"has_role": false}
}
