# NMP policy decision point (authz.md "Decision algorithm", "PDP entrypoints").
#
# Rego v1. Evaluated over data.authz, the policy data document:
#   permissions: nested objects whose leaves are {description}
#   roles:       {<name>: {description, includes?: [<role>], permissions: [<perm>]}}
#   endpoints:   {<pattern>: {<lower-case method>: {permissions: [...], scopes?: [...],
#                 public?: bool, callers?: ["service_principal"|"principal"], deny?: bool}}}
#   principals:  {<principal>: {workspaces: {<workspace>: [<role>, ...]}}}  (active bindings;
#                 "*" is the wildcard principal). Absent = bindings not loaded yet (row 2).
#   workspaces:  {} (unused by the decision)
#   config:      {denied_prefixes: [<path>, ...]}
#   index:       derived from roles, endpoints and config by the PDP when it builds the data
#                (Go: internal/authz/regoindex.go), so that a query does direct lookups:
#     version:         1 (the layout below; any other value or no index: see "The index")
#     roles:           {<role>: {<perm>: true}}, expanded through includes ("*" kept)
#     exact:           {<lower-case method>: {<segment count>: [<shape>, ...]}}: the shapes
#                      of the patterns without the "-" rule
#     greedy:          {<lower-case method>: [<shape>, ...]}: the shapes of the "-" rule
#                      patterns (they match paths of at least their segment count)
#     routes:          {<lower-case method>: {<shape id>: {<literals>: <route>}}}, where
#                      <literals> is the pattern's literal segments joined by "/"
#     bundle_scopes:   the scopes of the bundle endpoint's get entry
#     denied_prefixes: config.denied_prefixes without one trailing "/"
#   A shape is {id, segments, positions}: a segment count and the positions of the literal
#   segments; id is "<segments>:<positions joined by .>" ("<segments>+:..." for the "-"
#   rule). A route is {pattern, rank, segments, workspace, entry}: rank is the position in
#   the method's step-6 order, workspace the position of the workspace placeholder (-1:
#   none), entry the method's entry (HEAD: the head entry, else the get entry). Of each
#   shape a path can match only the route keyed by its own segments at the shape's
#   positions joined by "/" (a literal has no "/", so a decoded %2F cannot fake a match):
#   matching is one lookup per shape. HEAD is resolved in the index.
#   Lists are sorted, so the document is the same on every replica.
#
# Entrypoints: allow, has_permissions, has_role. The native Go evaluator implements the
# same algorithm; both are run against testdata/cases/*.yaml.
#
# Choices where authz.md is silent (the native evaluator makes the same ones):
# - The alias test (step 2) looks at the raw segments; "." / ".." / "" are tested after
#   decoding; "//" is "/" after dropping one trailing "/".
# - "The path" of rows 4, 7 and 10 is the decoded canonical path "/" + join(segs, "/"), so
#   an escaped %2F or %61 cannot dodge a denied prefix, row 7 or the bundle rule.
# - Matching is method-aware: a candidate is a matching pattern with an entry for the
#   method, or (HEAD) for head or get; the best-ranked candidate wins and uses its head
#   entry if it has one, else its get entry.
# - A "-" rule placeholder's value is the remaining segments joined with "/".
# - Row 10 applies to any method on the bundle path and uses the scopes of the bundle
#   endpoint's get entry.
# - PlatformAdmin (rows 8, 11; has_permissions) and ServiceSystem look at direct bindings
#   only: "PlatformAdmin" bound in system to an id (not to "*"); ServiceSystem when the
#   principal id itself (not its email, groups or "*") has no role in the workspace.
# - The Envoy form is used whenever input.attributes.request.http is an object.
package authz

# ---------------------------------------------------------------------------
# Input normalisation: the direct form, or the Envoy ext_authz form
# attributes.request.http.{method,path,headers} with lower-case x-nmp-* headers.
# ---------------------------------------------------------------------------

envoy_http := input.attributes.request.http if is_object(input.attributes.request.http)

envoy_headers := h if {
	h := envoy_http.headers
	is_object(h)
} else := {}

envoy_header(name) := v if {
	v := envoy_headers[name]
	is_string(v)
} else := ""

# req is the normalised request: principal_id, principal_email (strings, "" when absent),
# principal_groups, scopes (lists of non-empty strings), method (string), path (any; only a
# string can be valid).
req := {
	"principal_id": envoy_header("x-nmp-principal-id"),
	"principal_email": envoy_header("x-nmp-principal-email"),
	"principal_groups": [g |
		some part in split(envoy_header("x-nmp-principal-groups"), ",")
		g := trim_space(part)
		g != ""
	],
	"scopes": [s | some s in split(envoy_header("x-nmp-scopes"), " "); s != ""],
	"method": string_or_empty(object.get(envoy_http, "method", "")),
	"path": object.get(envoy_http, "path", null),
} if {
	envoy_http
} else := {
	"principal_id": input_string("principal_id"),
	"principal_email": input_string("principal_email"),
	"principal_groups": input_list("principal_groups"),
	"scopes": input_list("scopes"),
	"method": input_string("method"),
	"path": object.get(input, "path", null),
}

# input[key] if it is a string, else "" (string_or_empty(object.get(input, key, ""))).
input_string(key) := x if {
	x := input[key]
	is_string(x)
} else := ""

# The non-empty strings of input[key] if it is a list, else [] (string_list(object.get(
# input, key, []))).
input_list(key) := [x | some x in xs; is_string(x); x != ""] if {
	xs := input[key]
	is_array(xs)
} else := []

string_or_empty(x) := x if is_string(x)

else := ""

# Non-empty strings of a list; anything that is not a list yields [].
string_list(xs) := [x | some x in xs; is_string(x); x != ""] if is_array(xs)

else := []

# ids = {principal_id, principal_email, each group} without empties.
identity_ids(pid, email, groups) := {id | some id in array.concat([pid, email], groups); id != ""}

ids := {id | some id in array.concat([req.principal_id, req.principal_email], req.principal_groups); id != ""}

# svc: the principal is an internal service.
svc if startswith(req.principal_id, "service:")

# ---------------------------------------------------------------------------
# Canonical path (authz.md "Canonical path and matching", steps 1-3).
# ---------------------------------------------------------------------------

# Step 1: cut at the first "?" or "#" (most paths have neither).
cut_path := p if {
	p := req.path
	is_string(p)
	not contains(p, "?")
	not contains(p, "#")
} else := split(split(req.path, "?")[0], "#")[0] if is_string(req.path)

# Step 2: /v2/workspaces alias (tested on the raw, undecoded segments: the first two
# segments are "v2" and "workspaces").
aliased_path := concat("", ["/apis/entities", cut_path]) if {
	v2_workspaces(cut_path)
} else := cut_path if startswith(cut_path, "/")

v2_workspaces(p) if p == "/v2/workspaces"

v2_workspaces(p) if startswith(p, "/v2/workspaces/")

# Step 3: drop one trailing "/" (except for "/").
trimmed_path := substring(aliased_path, 0, count(aliased_path) - 1) if {
	aliased_path != "/"
	endswith(aliased_path, "/")
} else := aliased_path

raw_path_segments := [] if trimmed_path == "/"

else := split(substring(trimmed_path, 1, -1), "/")

# Percent-decode one segment (%XX only; "+" stays literal: urlquery.decode would turn it
# into a space, so it is protected as %2B). Undefined on a bad escape.
decode_segment(seg) := seg if {
	not contains(seg, "%")
} else := urlquery.decode(replace(seg, "+", "%2B")) if {
	regex.match(`^([^%]|%[0-9A-Fa-f]{2})*$`, seg)
}

# Without a "%" in the path every segment is its own decoding.
decoded_segments := raw_path_segments if {
	not contains(trimmed_path, "%")
} else := [d | some s in raw_path_segments; d := decode_segment(s)]

# path_valid: steps 1-3 succeeded: no bad escape, no empty, "." or ".." segment (tested
# after decoding, so %2e%2e is "..").
path_valid if {
	count(decoded_segments) == count(raw_path_segments)
	not dot_or_empty_segment
}

dot_or_empty_segment if {
	some d in decoded_segments
	d in {"", ".", ".."}
}

# The decoded segments (a decoded %2F stays inside its segment).
segs := decoded_segments if path_valid

# The canonical path string: "/" + decoded segments joined by "/". Used for the prefix
# tests of rows 4 and 7 and for the bundle path of row 10.
canonical_path := concat("", ["/", concat("/", segs)])

# ---------------------------------------------------------------------------
# The index (data.authz.index, see the header). The PDP ships it with the data; without
# it (the opa unit tests replace data.authz keys with fixtures), or with another
# version, the policy computes the same index from roles, endpoints and config on every
# query, which is slow but decides the same. regoindex_test.go checks that both are equal.
# ---------------------------------------------------------------------------

indexed if data.authz.index.version == 1

# The parts of the index a query reads (the endpoint index is read by route_hits).
# Without the index, only the request method's part of the endpoint index is computed.
index_roles := data.authz.index.roles if indexed

else := computed_roles

index_bundle_scopes := data.authz.index.bundle_scopes if indexed

else := bundle_get_scopes

index_denied_prefixes := data.authz.index.denied_prefixes if indexed

else := computed_denied_prefixes

# The whole computed index, in the shipped layout (compared with the Go-built one in
# regoindex_test.go; decisions read only the parts above).
computed_index := {
	"version": 1,
	"roles": computed_roles,
	"exact": computed_exact,
	"greedy": computed_greedy,
	"routes": computed_routes,
	"bundle_scopes": bundle_get_scopes,
	"denied_prefixes": computed_denied_prefixes,
}

computed_roles := {name: {p: true |
	some r in graph.reachable(role_graph, {name})
	some p in object.get(data.authz.roles, [r, "permissions"], [])
} |
	some name, _ in data.authz.roles
}

computed_exact[m] := by_count if {
	some m in index_methods
	shapes := [sh | some sh in method_shapes(m); not contains(sh.id, "+")]
	count(shapes) > 0
	by_count := {format_int(n, 10): [sh | some sh in shapes; sh.segments == n] |
		some n in {sh.segments | some sh in shapes}
	}
}

computed_greedy[m] := shapes if {
	some m in index_methods
	shapes := [sh | some sh in method_shapes(m); contains(sh.id, "+")]
	count(shapes) > 0
}

computed_routes[m] := {id: {concat("/", literals): route |
	some rank, key in ranked
	psegs := pattern_segments(key[2])
	shape(psegs).id == id
	literals := [pseg | some pseg in psegs; not is_placeholder(pseg)]
	route := {
		"pattern": key[2],
		"rank": rank,
		"segments": count(psegs),
		"workspace": workspace_position(psegs),
		"entry": index_entry(data.authz.endpoints[key[2]], m),
	}
} |
	some sh in method_shapes(m)
	id := sh.id
} if {
	some m in index_methods
	ranked := ranked_patterns(m)
}

computed_denied_prefixes := [trim_suffix(prefix, "/") | some prefix in config_denied_prefixes; is_string(prefix)]

role_graph := {name: object.get(role, "includes", []) | some name, role in data.authz.roles}

# The methods with an entry; HEAD as soon as some pattern has a get entry.
index_methods contains m if {
	some methods in data.authz.endpoints
	some m, _ in methods
}

index_methods contains "head" if {
	some methods in data.authz.endpoints
	methods.get
}

# A pattern's entry for a lower-case method: HEAD falls back to get pattern by pattern.
index_entry(methods, m) := e if {
	e := methods[m]
} else := e if {
	m == "head"
	e := methods.get
}

# The method's patterns in step-6 rank order as [placeholders, placeholders - length,
# pattern]: fewest placeholders, then most literals, then smallest pattern string.
ranked_patterns(m) := sort([[ph, ph - count(psegs), pattern] |
	some pattern, methods in data.authz.endpoints
	index_entry(methods, m)
	psegs := pattern_segments(pattern)
	ph := placeholder_count(psegs)
])

# The shapes of the method's patterns, sorted by id.
method_shapes(m) := [sh |
	some id in sort({sh.id | some sh in all_shapes})
	some sh in all_shapes
	sh.id == id
] if {
	all_shapes := {shape(pattern_segments(key[2])) | some key in ranked_patterns(m)}
}

shape(psegs) := {
	"id": concat("", [format_int(count(psegs), 10), greedy_mark(psegs), ":", concat(".", [format_int(i, 10) | some i in positions])]),
	"segments": count(psegs),
	"positions": positions,
} if {
	positions := [i | some i, pseg in psegs; not is_placeholder(pseg)]
}

greedy_mark(psegs) := "+" if greedy(psegs)

else := ""

is_placeholder(pseg) if {
	startswith(pseg, "{")
	endswith(pseg, "}")
	count(pseg) > 2
}

pattern_segments(pattern) := [] if {
	pattern == "/"
} else := split(trim_prefix(pattern, "/"), "/")

placeholder_count(psegs) := count([1 | some pseg in psegs; is_placeholder(pseg)])

# The "-" rule: a literal "-" segment followed only by a single placeholder; that
# placeholder matches one or more remaining segments.
greedy(psegs) if {
	n := count(psegs)
	n >= 2
	psegs[n - 2] == "-"
	is_placeholder(psegs[n - 1])
}

# Workspace = {workspace} or {workspace_id}; else the first placeholder right after a
# literal "workspaces" segment; else none (-1).
workspace_position(psegs) := i if {
	i := min({i | some i, pseg in psegs; pseg in {"{workspace}", "{workspace_id}"}})
} else := i if {
	i := min({i | some i, pseg in psegs; i > 0; is_placeholder(pseg); psegs[i - 1] == "workspaces"})
} else := -1

config_denied_prefixes := ps if {
	ps := data.authz.config.denied_prefixes
	is_array(ps)
} else := []

bundle_get_scopes := s if {
	s := data.authz.endpoints[bundle_pattern].get.scopes
	is_array(s)
} else := []

# ---------------------------------------------------------------------------
# Endpoint matching (steps 4-6), by lookups in the index.
# ---------------------------------------------------------------------------

# Step 4: upper-case method; the index is keyed by lower-case method (HEAD already
# resolved to head or get entries).
method := upper(req.method)

method_key := lower(method)

# Step 5: a path matches at most one route per shape of its method (exact shapes of its
# segment count, "-" rule shapes of at most its segment count): the one whose key is
# built from the path's segments at the shape's positions.
route_hits contains [r.rank, r] if {
	indexed
	some sh in data.authz.index.exact[method_key][segment_count]
	r := data.authz.index.routes[method_key][sh.id][concat("/", [segs[i] | some i in sh.positions])]
}

route_hits contains [r.rank, r] if {
	indexed
	some sh in data.authz.index.greedy[method_key]
	sh.segments <= count(segs)
	r := data.authz.index.routes[method_key][sh.id][concat("/", [segs[i] | some i in sh.positions])]
}

route_hits contains [r.rank, r] if {
	not indexed
	some sh in computed_exact[method_key][segment_count]
	r := computed_routes[method_key][sh.id][concat("/", [segs[i] | some i in sh.positions])]
}

route_hits contains [r.rank, r] if {
	not indexed
	some sh in computed_greedy[method_key]
	sh.segments <= count(segs)
	r := computed_routes[method_key][sh.id][concat("/", [segs[i] | some i in sh.positions])]
}

segment_count := format_int(count(segs), 10)

# Step 6: the matching route of lowest rank.
matched := min(route_hits)[1]

matched_pattern := matched.pattern

# ep: the matched entry (undefined = no endpoint).
ep := matched.entry

has_ep if ep

ep_permissions := object.get(ep, "permissions", [])

ep_scopes := object.get(ep, "scopes", []) if has_ep

else := []

# Placeholder values of the matched pattern: the last placeholder gets the remaining
# segments joined with "/" (only a greedy one can have more than one; otherwise the path
# has exactly the pattern's length).
placeholder_value(i) := concat("/", array.slice(segs, i, count(segs))) if {
	i == matched.segments - 1
} else := segs[i]

# The workspace placeholder's value; undefined when the pattern has none.
workspace := placeholder_value(i) if {
	i := matched.workspace
	i >= 0
}

# ---------------------------------------------------------------------------
# Roles and permissions.
# ---------------------------------------------------------------------------

bound_roles(id, ws) := rs if {
	rs := data.authz.principals[id].workspaces[ws]
	is_array(rs)
} else := []

# ServiceSystem is implicit for a service principal in a workspace where the principal
# id itself has no explicit binding. sys_pid "" disables it.
implicit_roles(sys_pid, ws) := {"ServiceSystem"} if {
	startswith(sys_pid, "service:")
	count(bound_roles(sys_pid, ws)) == 0
} else := set()

# Roles of ids and "*" in ws (bound_roles, inlined), plus the implicit ServiceSystem.
roles_in(id_set, sys_pid, ws) := bound_roles_of(id_set, ws) | implicit_roles(sys_pid, ws) if {
	startswith(sys_pid, "service:")
} else := bound_roles_of(id_set, ws)

bound_roles_of(id_set, ws) := {r |
	some id in (id_set | {"*"})
	rs := data.authz.principals[id].workspaces[ws]
	is_array(rs)
	some r in rs
}

# One required permission: "w2/p" is checked in w2 (split at the first "/"). It is held
# when a role, expanded through its includes, lists it or "*" (unknown roles hold
# nothing).
permission_held(id_set, sys_pid, ws, perm) if {
	not contains(perm, "/")
	some r in roles_in(id_set, sys_pid, ws)
	some p in [perm, "*"]
	index_roles[r][p]
}

permission_held(id_set, sys_pid, _, perm) if {
	i := indexof(perm, "/")
	i >= 0
	some r in roles_in(id_set, sys_pid, substring(perm, 0, i))
	some p in [substring(perm, i + 1, -1), "*"]
	index_roles[r][p]
}

# has_perms(ws, perms): all of perms are held (no permission is missing; cheaper in OPA
# than `every`, same meaning).
holds_all(id_set, sys_pid, ws, perms) if not lacks_one(id_set, sys_pid, ws, perms)

lacks_one(id_set, sys_pid, ws, perms) if {
	some perm in perms
	not permission_held(id_set, sys_pid, ws, perm)
}

has_perms(ws, perms) if not lacks_one(ids, req.principal_id, ws, perms)

# PlatformAdmin: some id has PlatformAdmin bound (directly) in system.
is_platform_admin(id_set) if {
	some id in id_set
	"PlatformAdmin" in bound_roles(id, "system")
}

admin if {
	some id in ids
	rs := data.authz.principals[id].workspaces.system
	is_array(rs)
	"PlatformAdmin" in rs
}

# ---------------------------------------------------------------------------
# Scopes (authz.md "Scopes and the two-layer rule").
# ---------------------------------------------------------------------------

# A permission-shaped string has a "." (cheap test first; the pattern decides).
permission_shaped(s) if {
	contains(s, ".")
	regex.match(`^[a-z0-9]+(-[a-z0-9]+)*(\.[a-z0-9]+(-[a-z0-9]+)*)+$`, s)
}

invalid_scopes if {
	some s in req.scopes
	permission_shaped(s)
}

# Passes when the token has no colon scope (no scopes at all included), the endpoint lists
# none, or the token holds one of the endpoint's.
scopes_ok(_) if not token_has_colon_scope

scopes_ok(endpoint_scopes) if count(endpoint_scopes) == 0

scopes_ok(endpoint_scopes) if {
	some s in endpoint_scopes
	s in req.scopes
}

token_has_colon_scope if {
	some s in req.scopes
	contains(s, ":")
}

# ---------------------------------------------------------------------------
# Row conditions.
# ---------------------------------------------------------------------------

bindings_loaded if is_object(data.authz.principals)

ep_public if ep.public == true

# Row 4: the path equals or is below a denied prefix (one trailing "/" of the prefix is
# ignored, so "/" denies everything; the index holds the prefixes without it).
prefix_denied if {
	some prefix in index_denied_prefixes
	below(canonical_path, prefix)
}

below(p, prefix) if p == prefix

below(p, prefix) if startswith(p, concat("", [prefix, "/"]))

# Row 7: the entity store's public surface.
entities_workspaces if array.slice(segs, 0, 4) == ["apis", "entities", "v2", "workspaces"]

entities_public if {
	entities_workspaces
	count(segs) == 4
	method in {"GET", "HEAD", "POST"}
}

entities_public if {
	entities_workspaces
	count(segs) == 5
	method in {"GET", "HEAD", "PUT", "DELETE"}
}

entities_public if {
	entities_workspaces
	count(segs) >= 6
	segs[4] != "-"
	segs[5] in {"members", "projects", "entities"}
}

entities_internal if {
	startswith(canonical_path, "/apis/entities/v2/")
	not svc
	not admin
	not entities_public
}

bundle_pattern := "/apis/auth/v2/iam/opa-bundle.tar.gz"

# Row 10 applies to the bundle path with any method (compared on the decoded canonical
# path, so opa-bundle%2Etar.gz is the bundle too).
bundle_path if canonical_path == bundle_pattern

# The scopes of the bundle endpoint's get entry, whatever the request method.
bundle_scopes := index_bundle_scopes

bundle_allowed if {
	has_perms("system", ["iam.bundle.read"])
	scopes_ok(bundle_scopes)
}

check_workspace := workspace if workspace

else := "system"

# ---------------------------------------------------------------------------
# Decision: the first matching row decides (authz.md rows 1-20, in order).
# ---------------------------------------------------------------------------

# The rows in order; each body starts with its row number of authz.md's table. Each head
# is the literal answer (cheaper in OPA than a helper function call).
decision := {"allowed": false, "reason": "invalid_path"} if {
	# Row 1
	not path_valid
} else := {"allowed": false, "reason": "invalid_scope"} if {
	# Row 1b (this project's addition, not in the table): a permission-shaped scope
	# (`a.b`) in the input is a client error; the HTTP layer answers 400 invalid_scope.
	invalid_scopes
} else := {"allowed": false, "reason": "no_policy_data"} if {
	# Row 2
	not bindings_loaded
	not ep_public
} else := {"allowed": false, "reason": "endpoint_denied"} if {
	# Row 3
	ep.deny == true
} else := {"allowed": false, "reason": "prefix_denied"} if {
	# Row 4
	prefix_denied
} else := {"allowed": true, "reason": "public_endpoint"} if {
	# Row 5
	ep_public
} else := {"allowed": false, "reason": "no_principal"} if {
	# Row 6
	count(ids) == 0
} else := {"allowed": false, "reason": "entities_internal"} if {
	# Row 7
	entities_internal
} else := {"allowed": false, "reason": "callers_restricted"} if {
	# Row 8
	ep.callers == ["service_principal"]
	not svc
	not admin
} else := {"allowed": false, "reason": "callers_restricted"} if {
	# Row 9
	ep.callers == ["principal"]
	svc
} else := {"allowed": false, "reason": "bundle_forbidden"} if {
	# Row 10
	bundle_path
	not bundle_allowed
} else := {"allowed": true, "reason": "platform_admin"} if {
	# Row 11
	admin
} else := {"allowed": true, "reason": "service_unknown_path"} if {
	# Row 12
	not has_ep
	svc
} else := {"allowed": false, "reason": "unknown_endpoint"} if {
	# Row 13
	not has_ep
} else := {"allowed": false, "reason": "scope_missing"} if {
	# Row 14
	not scopes_ok(ep_scopes)
} else := {"allowed": true, "reason": "authenticated"} if {
	# Row 15
	count(ep_permissions) == 0
} else := {"allowed": true, "reason": "cross_workspace_read"} if {
	# Row 16 (the handler filters)
	workspace == "-"
	method in {"GET", "HEAD"}
} else := {"allowed": true, "reason": "permission_granted"} if {
	# Row 17
	workspace == "-"
	svc
	has_perms("-", ep_permissions)
} else := {"allowed": false, "reason": "permission_missing"} if {
	# Row 18
	workspace == "-"
} else := {"allowed": true, "reason": "permission_granted"} if {
	# Row 19; otherwise row 20 (the final else)
	has_perms(check_workspace, ep_permissions)
} else := {"allowed": false, "reason": "permission_missing"}

# allow: {"allowed", "headers": {"X-NMP-Authorized"}, "reason"}.
allow := {
	"allowed": decision.allowed,
	"headers": {"X-NMP-Authorized": sprintf("%v", [decision.allowed])},
	"reason": decision.reason,
}

# ---------------------------------------------------------------------------
# has_permissions: {"allowed": bool}. Ignores scopes; PlatformAdmin -> true. With
# on_behalf_of_principal_id, ids = {on-behalf-of id, principal_email, principal_groups}
# and no ServiceSystem. Denied unless the bindings are loaded, ids is not empty, the
# workspace is a non-empty string and permissions a non-empty list of strings.
# ---------------------------------------------------------------------------

hp_on_behalf_of := input.on_behalf_of_principal_id if {
	is_string(input.on_behalf_of_principal_id)
	input.on_behalf_of_principal_id != ""
}

hp_principal_id := string_or_empty(object.get(input, "principal_id", ""))

hp_first_id := hp_on_behalf_of if hp_on_behalf_of

else := hp_principal_id

hp_ids := identity_ids(
	hp_first_id,
	string_or_empty(object.get(input, "principal_email", "")),
	string_list(object.get(input, "principal_groups", [])),
)

hp_sys_pid := "" if hp_on_behalf_of

else := hp_principal_id

hp_request_ok if {
	bindings_loaded
	count(hp_ids) > 0
	is_string(input.workspace)
	input.workspace != ""
	is_array(input.permissions)
	count(input.permissions) > 0
	every p in input.permissions {
		is_string(p)
	}
}

hp_allowed if {
	hp_request_ok
	is_platform_admin(hp_ids)
}

hp_allowed if {
	hp_request_ok
	holds_all(hp_ids, hp_sys_pid, input.workspace, input.permissions)
}

default has_permissions := {"allowed": false}

has_permissions := {"allowed": true} if hp_allowed

# ---------------------------------------------------------------------------
# has_role: {"has_role": bool}. Exact: the role is directly bound in the workspace to
# principal_id, principal_email or one of principal_groups. No includes, no "*" fallback
# (unless principal_id is "*"), no PlatformAdmin shortcut.
# ---------------------------------------------------------------------------

hr_ids := identity_ids(
	string_or_empty(object.get(input, "principal_id", "")),
	string_or_empty(object.get(input, "principal_email", "")),
	string_list(object.get(input, "principal_groups", [])),
)

hr_match if {
	is_string(input.workspace)
	is_string(input.role)
	some id in hr_ids
	input.role in bound_roles(id, input.workspace)
}

default has_role := {"has_role": false}

has_role := {"has_role": true} if hr_match
