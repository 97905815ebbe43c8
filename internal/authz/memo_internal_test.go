package authz

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestMemoKeyCoversInput: changing any one field of Input, whichever
// fields Input has, changes the memo key, and values moved between
// fields or split differently never share a key.
func TestMemoKeyCoversInput(t *testing.T) {
	base := Input{PrincipalID: "alice", PrincipalEmail: "alice@example.com", PrincipalGroups: []string{"g1", "g2"},
		OnBehalfOf: "bob", Method: "GET", Path: "/apis/entities/v2/workspaces/a", Scopes: []string{"s1"}}
	key := func(in Input) string {
		k, ok := appendMemoKey(nil, in)
		if !ok {
			t.Fatalf("no key for %+v", in)
		}
		return string(k)
	}
	seen := map[string]string{key(base): "base"}
	add := func(name string, in Input) {
		t.Helper()
		k := key(in)
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share a memo key", name, other)
		}
		seen[k] = name
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		for _, change := range []string{"altered", "emptied"} {
			in := base
			in.PrincipalGroups = append([]string(nil), base.PrincipalGroups...)
			in.Scopes = append([]string(nil), base.Scopes...)
			v := reflect.ValueOf(&in).Elem().Field(i)
			switch {
			case v.Kind() == reflect.String && change == "altered":
				v.SetString(v.String() + "x")
			case v.Kind() == reflect.String:
				v.SetString("")
			case v.Kind() == reflect.Slice && change == "altered":
				v.Set(reflect.Append(v, reflect.ValueOf("x")))
			case v.Kind() == reflect.Slice:
				v.Set(reflect.Zero(v.Type()))
			default:
				t.Fatalf("Input.%s is a %s: teach appendMemoKey and this test about it", f.Name, v.Kind())
			}
			add(f.Name+" "+change, in)
		}
	}
	for _, c := range []struct {
		name string
		in   Input
	}{
		{"id split into email", Input{PrincipalID: "ali", PrincipalEmail: "ce@example.com", Method: "GET", Path: "/x"}},
		{"id whole", Input{PrincipalID: "alice@example.com", Method: "GET", Path: "/x"}},
		{"group as scope", Input{PrincipalID: "a", Scopes: []string{"g"}, Method: "GET", Path: "/x"}},
		{"group", Input{PrincipalID: "a", PrincipalGroups: []string{"g"}, Method: "GET", Path: "/x"}},
		{"two groups", Input{PrincipalID: "a", PrincipalGroups: []string{"g", "h"}, Method: "GET", Path: "/x"}},
		{"one group joined", Input{PrincipalID: "a", PrincipalGroups: []string{"gh"}, Method: "GET", Path: "/x"}},
		{"empty group", Input{PrincipalID: "a", PrincipalGroups: []string{""}, Method: "GET", Path: "/x"}},
		{"method in path", Input{PrincipalID: "a", Method: "GE", Path: "T/x"}},
	} {
		add(c.name, c.in)
	}
}

// TestMemoBounded: a memo never holds more than memoEntries answers, and
// an input with a key longer than memoKeyMax is answered without one.
func TestMemoBounded(t *testing.T) {
	doc, err := StaticDocument()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(doc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range memoEntries + 100 {
		in := Input{PrincipalID: "alice", Method: "GET", Path: fmt.Sprintf("/apis/entities/v2/workspaces/w%d", i)}
		if d := e.AllowRepeated(in); d != e.Allow(in) {
			t.Fatalf("%+v: %+v, Allow %+v", in, d, e.Allow(in))
		}
		if n := len(e.memo.Load().m); n > memoEntries {
			t.Fatalf("memo holds %d answers", n)
		}
	}
	long := Input{PrincipalID: "alice", Method: "GET", Path: "/apis/entities/v2/workspaces/" + strings.Repeat("w", memoKeyMax)}
	before := len(e.memo.Load().m)
	if d := e.AllowRepeated(long); d != e.Allow(long) {
		t.Fatalf("long input: %+v, Allow %+v", d, e.Allow(long))
	}
	if after := len(e.memo.Load().m); after != before {
		t.Errorf("a key longer than %d bytes was kept (%d answers, then %d)", memoKeyMax, before, after)
	}
}
