package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/bundle"
	"github.com/nmp-project/nmp/internal/store"
)

// randomBindings are n bindings over a few principals, workspaces and
// roles (an undefined role and a principal with more workspaces than an
// index entry keeps in its small form included), numbered 1..n.
func randomBindings(seed uint64, n int) []store.RoleBinding {
	rng := rand.New(rand.NewPCG(seed, 1))
	roles := []string{"Viewer", "Editor", "Admin", "WorkspaceCreator", "JobRunner", "NoSuchRole", authz.RolePlatformAdmin}
	var out []store.RoleBinding
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("user-%d@example.com", rng.IntN(40))
		if i%7 == 0 {
			p = "busy@example.com" // many workspaces: the map form of an index entry
		}
		ws := fmt.Sprintf("ws-%d", rng.IntN(30))
		if i%11 == 0 {
			ws = store.SystemWorkspace
		}
		out = append(out, store.RoleBinding{ID: fmt.Sprint(i), Name: fmt.Sprintf("b-%d", i), Principal: p,
			Workspace: ws, Role: roles[rng.IntN(len(roles))], Revision: int64(i)})
	}
	return out
}

func load(t testing.TB, e *authz.Engine, rev int64, bindings []store.RoleBinding) {
	t.Helper()
	if err := e.Load(store.PolicyBindings{Revision: rev, Bindings: bindings}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func build(t testing.TB, e *authz.Engine) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Build(e.BundleData())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scanner streams bindings to Engine.LoadFrom (the full-load path of a
// running server) in the order given.
type scanner struct {
	rev      int64
	bindings []store.RoleBinding
}

func (s scanner) ScanActiveBindings(_ context.Context, fn func(principal, workspace, role string) error) (int64, error) {
	for _, b := range s.bindings {
		if err := fn(b.Principal, b.Workspace, b.Role); err != nil {
			return 0, err
		}
	}
	return s.rev, nil
}

// TestBuildIsDeterministic: engines holding the same bindings at the same
// revision produce byte-identical bundles, however the bindings reached
// them (any load order, the streaming full load, a load plus changes) and
// in whichever process (each engine has its own hash seed, as after a
// restart).
func TestBuildIsDeterministic(t *testing.T) {
	const n = 600
	bindings := randomBindings(42, n)
	first := authztest.StaticEngine(t)
	load(t, first, n, bindings)
	want := build(t, first)
	if again := build(t, first); !bytes.Equal(again.Bytes, want.Bytes) || again.ETag != want.ETag {
		t.Fatal("two builds of one engine differ")
	}

	shuffled := slices.Clone(bindings)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	reversed := slices.Clone(bindings)
	slices.Reverse(reversed)

	cases := []struct {
		name string
		fill func(t *testing.T, e *authz.Engine)
	}{
		{"restart, same order", func(t *testing.T, e *authz.Engine) { load(t, e, n, bindings) }},
		{"shuffled", func(t *testing.T, e *authz.Engine) { load(t, e, n, shuffled) }},
		{"reversed", func(t *testing.T, e *authz.Engine) { load(t, e, n, reversed) }},
		{"streamed full load, shuffled", func(t *testing.T, e *authz.Engine) {
			if _, err := e.LoadFrom(context.Background(), scanner{rev: n, bindings: shuffled}, time.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"load then changes", func(t *testing.T, e *authz.Engine) {
			load(t, e, n/2, bindings[:n/2])
			if err := e.Apply(store.PolicyBindings{Since: n / 2, Revision: n, Bindings: bindings[n/2:]}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := authztest.StaticEngine(t)
			tc.fill(t, e)
			got := build(t, e)
			if !bytes.Equal(got.Bytes, want.Bytes) || got.ETag != want.ETag {
				t.Fatalf("bundle differs: %d bytes %s, want %d bytes %s\ndata: %s",
					len(got.Bytes), got.ETag, len(want.Bytes), want.ETag, firstDifference(t, got, want))
			}
		})
	}

	t.Run("another revision differs", func(t *testing.T) {
		e := authztest.StaticEngine(t)
		load(t, e, n+1, bindings)
		if got := build(t, e); got.ETag == want.ETag {
			t.Fatal("a different revision gave the same ETag")
		}
	})
}

// firstDifference names the first archive entry that differs.
func firstDifference(t *testing.T, a, b *bundle.Bundle) string {
	ea, eb := readArchive(t, a.Bytes), readArchive(t, b.Bytes)
	for i := range min(len(ea), len(eb)) {
		if ea[i].Name != eb[i].Name || !bytes.Equal(ea[i].data, eb[i].data) {
			return ea[i].Name
		}
	}
	return "entry count"
}

type entry struct {
	*tar.Header
	data []byte
}

// readArchive checks the gzip header and returns the tar entries.
func readArchive(t *testing.T, b []byte) []entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || zr.Comment != "" || !zr.ModTime.IsZero() || zr.Extra != nil {
		t.Fatalf("gzip header carries name %q, comment %q, time %v or extra %q", zr.Name, zr.Comment, zr.ModTime, zr.Extra)
	}
	tr := tar.NewReader(zr)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h, data})
	}
	return out
}

// TestBuildArchive reads the archive back: the entries, their order and
// headers, and their contents.
func TestBuildArchive(t *testing.T) {
	e := authztest.StaticEngine(t)
	load(t, e, 9, []store.RoleBinding{
		{ID: "1", Principal: "alice", Workspace: "ml", Role: "Editor", Revision: 3},
		{ID: "2", Principal: "alice", Workspace: "ml", Role: "Admin", Revision: 4},
		{ID: "3", Principal: "*", Workspace: "default", Role: "Editor", Revision: 9},
	})
	b := build(t, e)
	sum := sha256.Sum256(b.Bytes)
	if want := `"` + hex.EncodeToString(sum[:])[:32] + `"`; b.ETag != want || b.Revision != 9 {
		t.Fatalf("ETag %s revision %d, want %s 9", b.ETag, b.Revision, want)
	}

	entries := readArchive(t, b.Bytes)
	wantNames := []string{".manifest", "data.json"}
	policies := authz.PolicyFiles()
	for _, p := range policies {
		wantNames = append(wantNames, "policy/"+p.Name)
	}
	var names []string
	for _, en := range entries {
		names = append(names, en.Name)
		if en.Typeflag != tar.TypeReg || en.Mode != 0o644 || en.Uid != 0 || en.Gid != 0 || en.Uname != "" || en.Gname != "" ||
			!en.ModTime.Equal(time.Unix(0, 0)) || en.Size != int64(len(en.data)) {
			t.Errorf("%s: header %+v", en.Name, *en.Header)
		}
	}
	if !slices.Equal(names, wantNames) || !slices.IsSorted(names) {
		t.Fatalf("entries %q, want %q (sorted)", names, wantNames)
	}
	for _, n := range names {
		if len(n) > len("_test.rego") && n[len(n)-len("_test.rego"):] == "_test.rego" {
			t.Fatalf("test file %s shipped", n)
		}
	}

	var man map[string]any
	if err := json.Unmarshal(entries[0].data, &man); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"revision": "9", "roots": []any{"authz"}, "rego_version": float64(1)}; !reflect.DeepEqual(man, want) {
		t.Fatalf(".manifest %s", entries[0].data)
	}

	var data struct {
		Authz map[string]any `json:"authz"`
	}
	if err := json.Unmarshal(entries[1].data, &data); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any // the engine's document, in JSON types
	raw, err := json.Marshal(e.DataDocument())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(data.Authz, doc) {
		t.Fatalf("data.json's authz differs from the engine's data document")
	}
	alice := data.Authz["principals"].(map[string]any)["alice"].(map[string]any)["workspaces"].(map[string]any)["ml"]
	if !reflect.DeepEqual(alice, []any{"Admin", "Editor"}) {
		t.Fatalf("alice's roles in ml: %v, want [Admin Editor] (sorted by name)", alice)
	}
	for i, p := range policies {
		if !bytes.Equal(entries[2+i].data, p.Data) {
			t.Fatalf("%s differs from the shipped file", p.Name)
		}
	}
}
