package authz

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// regoIndexVersion is data.authz.index.version: the layout of the index
// below. The Rego policy reads the index only when the version is the one
// it knows, and otherwise computes the same index from the other keys.
const regoIndexVersion = 1

// regoIndex is data.authz.index: what the Rego policy would otherwise
// recompute on every query (the endpoint ranking and the role graph),
// precomputed once per data document. Everything in it is derived from
// the document's roles, endpoints and config; principals stay where they
// are (direct lookups by id and workspace). The layout is described in
// the header of policy/authz.rego.
//
// Matching works by shapes: a shape is a segment count and the positions
// of the literal segments. A path matches a pattern of a given shape only
// if its segments at those positions equal the pattern's literals, so one
// object lookup per shape (by those segments joined with "/": a literal
// has no "/", so a decoded segment holding one cannot fake a match) finds
// the only pattern of that shape that can match, and the
// matching route of lowest rank wins. A bucket usually has one or two
// shapes, so a decision does a handful of lookups whatever the number of
// endpoints.
type regoIndex struct {
	Version int `json:"version"`
	// Roles: role -> permission -> true, expanded through includes ("*" kept).
	Roles map[string]map[string]bool `json:"roles"`
	// Exact: method -> segment count (decimal) -> the shapes of the
	// patterns without the "-" rule that have that many segments.
	Exact map[string]map[string][]regoShape `json:"exact"`
	// Greedy: method -> the shapes of the "-" rule patterns, which match
	// paths of at least their segment count.
	Greedy map[string][]regoShape `json:"greedy"`
	// Routes: method -> shape id -> the pattern's literal segments joined
	// with "/" -> route.
	Routes map[string]map[string]map[string]regoRoute `json:"routes"`
	// BundleScopes: the scopes of the bundle endpoint's get entry (row 10).
	BundleScopes []string `json:"bundle_scopes"`
	// DeniedPrefixes: config.denied_prefixes without one trailing "/" (row 4).
	DeniedPrefixes []string `json:"denied_prefixes"`
}

// regoShape is a segment count with the positions of the literal segments.
type regoShape struct {
	// ID is "<segments>:<positions joined with .>", with "+" after the
	// count for a "-" rule shape; it never contains "/".
	ID        string `json:"id"`
	Segments  int    `json:"segments"`
	Positions []int  `json:"positions"`
}

// regoRoute is one pattern with its entry for one method.
type regoRoute struct {
	Pattern string `json:"pattern"`
	// Rank is the position in the method's step-6 order (fewest
	// placeholders, most literals, smallest pattern string): the matching
	// route with the lowest rank wins.
	Rank int `json:"rank"`
	// Segments is the pattern's segment count.
	Segments int `json:"segments"`
	// Workspace is the position of the workspace placeholder, or -1.
	Workspace int `json:"workspace"`
	// Entry is the entry used for the method: for HEAD, the head entry,
	// else the get entry.
	Entry Endpoint `json:"entry"`
}

// buildRegoIndex precomputes data.authz.index from a document. It fails
// only when the endpoints do not compile, which Validate rules out.
func (d *Document) buildRegoIndex() (*regoIndex, error) {
	eps, err := compileEndpoints(d.Endpoints)
	if err != nil {
		return nil, err
	}
	ix := &regoIndex{
		Version:        regoIndexVersion,
		Roles:          make(map[string]map[string]bool, len(d.Roles)),
		Exact:          map[string]map[string][]regoShape{},
		Greedy:         map[string][]regoShape{},
		Routes:         map[string]map[string]map[string]regoRoute{},
		BundleScopes:   []string{},
		DeniedPrefixes: []string{},
	}
	for name := range d.Roles {
		ix.Roles[name] = d.expandedPermissions(name)
	}
	for m, routes := range eps.byMethod {
		shapes := map[string]regoShape{}
		for rank, r := range routes {
			byMethod := d.Endpoints[r.pat.text]
			entry, ok := byMethod[m]
			if !ok {
				entry = byMethod["get"] // HEAD without a head entry (compileEndpoints)
			}
			n := len(r.pat.segs)
			sh := regoShape{Segments: n, Positions: []int{}}
			var ids, literals []string
			for i, s := range r.pat.segs {
				if r.pat.names[i] == "" {
					sh.Positions = append(sh.Positions, i)
					ids = append(ids, strconv.Itoa(i))
					literals = append(literals, s)
				}
			}
			count := strconv.Itoa(n)
			if r.pat.rest {
				count += "+"
			}
			sh.ID = count + ":" + strings.Join(ids, ".")
			shapes[sh.ID] = sh
			if ix.Routes[m] == nil {
				ix.Routes[m] = map[string]map[string]regoRoute{}
			}
			if ix.Routes[m][sh.ID] == nil {
				ix.Routes[m][sh.ID] = map[string]regoRoute{}
			}
			ix.Routes[m][sh.ID][strings.Join(literals, "/")] = regoRoute{Pattern: r.pat.text, Rank: rank, Segments: n,
				Workspace: r.pat.wsIndex, Entry: entry}
		}
		for _, id := range slices.Sorted(maps.Keys(shapes)) {
			sh := shapes[id]
			if strings.Contains(id, "+") {
				ix.Greedy[m] = append(ix.Greedy[m], sh)
				continue
			}
			if ix.Exact[m] == nil {
				ix.Exact[m] = map[string][]regoShape{}
			}
			key := strconv.Itoa(sh.Segments)
			ix.Exact[m][key] = append(ix.Exact[m][key], sh)
		}
	}
	if s := d.Endpoints[bundlePath]["get"].Scopes; s != nil {
		ix.BundleScopes = slices.Clone(s)
	}
	for _, p := range d.Config.DeniedPrefixes {
		ix.DeniedPrefixes = append(ix.DeniedPrefixes, strings.TrimSuffix(p, "/"))
	}
	return ix, nil
}

// expandedPermissions is the set of permissions of a role and of every
// role it includes, transitively (each role visited once, so a cycle,
// which Validate rejects anyway, cannot loop). Unknown roles add nothing.
func (d *Document) expandedPermissions(name string) map[string]bool {
	perms := map[string]bool{}
	seen := map[string]bool{name: true}
	queue := []string{name}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		role := d.Roles[r]
		for _, p := range role.Permissions {
			perms[p] = true
		}
		for _, inc := range role.Includes {
			if !seen[inc] {
				seen[inc] = true
				queue = append(queue, inc)
			}
		}
	}
	return perms
}
