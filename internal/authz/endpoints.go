package authz

import (
	"fmt"
	"sort"
	"strings"
)

// pattern is a compiled endpoint pattern.
type pattern struct {
	text         string
	segs         []string // literal segments; "" marks a placeholder
	names        []string // placeholder names by position ("" for literals)
	placeholders int
	literals     int
	// rest: a literal "-" segment followed only by one placeholder, which
	// then matches one or more remaining segments.
	rest bool
	// wsIndex is the segment holding the workspace, or -1.
	wsIndex int
}

func compilePattern(text string) (*pattern, error) {
	if !strings.HasPrefix(text, "/") {
		return nil, fmt.Errorf("endpoint pattern %q must start with /", text)
	}
	p := &pattern{text: text, wsIndex: -1}
	if text == "/" {
		return p, nil
	}
	parts := strings.Split(strings.TrimPrefix(text, "/"), "/")
	for i, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("endpoint pattern %q has an empty segment", text)
		}
		if strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") && len(part) > 2 {
			name := part[1 : len(part)-1]
			p.segs = append(p.segs, "")
			p.names = append(p.names, name)
			p.placeholders++
			if (name == "workspace" || name == "workspace_id") && p.wsIndex < 0 {
				p.wsIndex = i
			}
			continue
		}
		if strings.ContainsAny(part, "{}") {
			return nil, fmt.Errorf("endpoint pattern %q: malformed placeholder %q", text, part)
		}
		p.segs = append(p.segs, part)
		p.names = append(p.names, "")
		p.literals++
	}
	if p.wsIndex < 0 {
		for i := 1; i < len(p.segs); i++ {
			if p.names[i] != "" && p.segs[i-1] == "workspaces" && p.names[i-1] == "" {
				p.wsIndex = i
				break
			}
		}
	}
	n := len(p.segs)
	p.rest = n >= 2 && p.segs[n-2] == "-" && p.names[n-1] != ""
	return p, nil
}

// match reports whether decoded path segments match the pattern.
func (p *pattern) match(segs []string) bool {
	n := len(p.segs)
	if p.rest {
		if len(segs) < n {
			return false
		}
	} else if len(segs) != n {
		return false
	}
	for i, s := range p.segs {
		if s != "" && segs[i] != s {
			return false
		}
	}
	return true
}

// workspace returns the value of the workspace placeholder; a greedy
// placeholder takes the remaining segments joined with "/".
func (p *pattern) workspace(segs []string) (string, bool) {
	if p.wsIndex < 0 {
		return "", false
	}
	if p.rest && p.wsIndex == len(p.segs)-1 {
		return strings.Join(segs[p.wsIndex:], "/"), true
	}
	return segs[p.wsIndex], true
}

// less orders patterns by rank: fewest placeholders, then most literals,
// then the smallest pattern string.
func (p *pattern) less(q *pattern) bool {
	if p.placeholders != q.placeholders {
		return p.placeholders < q.placeholders
	}
	if p.literals != q.literals {
		return p.literals > q.literals
	}
	return p.text < q.text
}

// route is one pattern with its entry for one method.
type route struct {
	pat *pattern
	ep  *compiledEndpoint
}

// endpointIndex finds the entry for a method and decoded path.
type endpointIndex struct {
	byMethod map[string][]route // sorted by rank
}

func compileEndpoints(eps map[string]map[string]Endpoint) (*endpointIndex, error) {
	idx := &endpointIndex{byMethod: map[string][]route{}}
	for text, byMethod := range eps {
		p, err := compilePattern(text)
		if err != nil {
			return nil, err
		}
		for m, ep := range byMethod {
			idx.byMethod[m] = append(idx.byMethod[m], route{pat: p, ep: &compiledEndpoint{Endpoint: ep}})
		}
	}
	// HEAD falls back to GET pattern by pattern: a HEAD request considers
	// every pattern with a head entry or, failing that, a get entry.
	var head []route
	for text, byMethod := range eps {
		if _, ok := byMethod["head"]; ok {
			continue
		}
		if _, ok := byMethod["get"]; ok {
			for _, r := range idx.byMethod["get"] {
				if r.pat.text == text {
					head = append(head, r)
				}
			}
		}
	}
	idx.byMethod["head"] = append(idx.byMethod["head"], head...)
	for m, routes := range idx.byMethod {
		sort.Slice(routes, func(i, j int) bool { return routes[i].pat.less(routes[j].pat) })
		for i := 1; i < len(routes); i++ {
			a, b := routes[i-1].pat, routes[i].pat
			if a.placeholders == b.placeholders && a.literals == b.literals && overlap(a, b) {
				return nil, fmt.Errorf("endpoint patterns %s and %s have equal rank and can match the same %s request",
					a.text, b.text, strings.ToUpper(m))
			}
		}
	}
	return idx, nil
}

// overlap reports whether some path matches both patterns.
func overlap(a, b *pattern) bool {
	if !a.rest && !b.rest && len(a.segs) != len(b.segs) {
		return false
	}
	n := min(len(a.segs), len(b.segs))
	if !a.rest && len(a.segs) < len(b.segs) || !b.rest && len(b.segs) < len(a.segs) {
		return false
	}
	for i := 0; i < n; i++ {
		if a.segs[i] != "" && b.segs[i] != "" && a.segs[i] != b.segs[i] {
			return false
		}
	}
	return true
}

// lowerMethod is strings.ToLower(method) without an allocation for the
// standard methods.
func lowerMethod(method string) string {
	switch method {
	case "GET":
		return "get"
	case "HEAD":
		return "head"
	case "POST":
		return "post"
	case "PUT":
		return "put"
	case "PATCH":
		return "patch"
	case "DELETE":
		return "delete"
	case "OPTIONS":
		return "options"
	}
	return strings.ToLower(method)
}

// lookup returns the best-ranked route for the method and decoded path.
func (idx *endpointIndex) lookup(method string, segs []string) (route, bool) {
	for _, r := range idx.byMethod[lowerMethod(method)] {
		if r.pat.match(segs) {
			return r, true
		}
	}
	return route{}, false
}
