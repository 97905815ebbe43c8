package config

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/tools/go/packages"
	"gopkg.in/yaml.v3"
)

// The key audit: every configuration key must either take effect (its
// field is read by code that ships in the nmp binary) or be refused when
// set to anything but its default (unsupportedKeys). An operator must never
// set a key that silently does nothing.

// auditKey is one configuration key found by the loaders' walk.
type auditKey struct {
	key   string       // dotted key; list items as dev_idp.clients[].client_id
	owner reflect.Type // struct type declaring the field
	field string       // Go field name
}

// auditKeys walks Config the way the loaders do (yamlKey, shapeOf): every
// leaf, every list of objects and every field of those objects. Sections
// are not keys of their own.
func auditKeys() []auditKey {
	var keys []auditKey
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlKey(f)
			if name == "" {
				continue
			}
			key := joinKey(prefix, name)
			switch shapeOf(f.Type) {
			case shapeSection:
				walk(f.Type, key)
			case shapeObjectList:
				keys = append(keys, auditKey{key, t, f.Name})
				walk(f.Type.Elem(), key+"[]")
			default:
				keys = append(keys, auditKey{key, t, f.Name})
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

// helperFiles are the files of this package whose functions count as reads
// when they are themselves used by shipped code outside the package
// (ExpectedAudience, SQLitePath, …). Reads in every other file of the
// package (loading, validation, compatibility) never count.
var helperFiles = []string{"config.go"}

// fieldReads maps each struct field of this package to where shipped code
// outside the package reads it.
type fieldReads map[*types.Var][]string

const modulePath = "github.com/nmp-project/nmp"

// srcPackage is one of the module's packages, type-checked from source.
type srcPackage struct {
	path, name string
	imports    []string
	files      []*ast.File
	info       *types.Info
	types      *types.Package
}

// loadModule lists the module's packages (go list, no compilation) and
// type-checks their non-test files from source in dependency order.
// Packages outside the module (the standard library, dependencies) are
// stand-ins without declarations: nothing has to be compiled, so the audit
// costs seconds even with a cold build cache. The errors this causes at
// uses of those packages are ignored; selections of this package's fields
// only involve the module's own types and are recorded all the same.
func loadModule() (*token.FileSet, map[string]*srcPackage, error) {
	listed, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports},
		modulePath+"/...")
	if err != nil {
		return nil, nil, err
	}
	fset := token.NewFileSet()
	pkgs := make(map[string]*srcPackage)
	for _, lp := range listed {
		if len(lp.Errors) > 0 {
			return nil, nil, fmt.Errorf("listing %s: %v", lp.PkgPath, lp.Errors[0])
		}
		sp := &srcPackage{path: lp.PkgPath, name: lp.Name}
		for imp := range lp.Imports {
			sp.imports = append(sp.imports, imp)
		}
		slices.Sort(sp.imports)
		for _, name := range lp.GoFiles {
			f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, nil, err
			}
			sp.files = append(sp.files, f)
		}
		pkgs[sp.path] = sp
	}
	stand := make(map[string]*types.Package)
	var check func(sp *srcPackage) error
	imp := importerFunc(func(path string) (*types.Package, error) {
		if sp, ok := pkgs[path]; ok {
			if err := check(sp); err != nil {
				return nil, err
			}
			return sp.types, nil
		}
		if p := stand[path]; p != nil {
			return p, nil
		}
		p := types.NewPackage(path, filepath.Base(path))
		p.MarkComplete()
		stand[path] = p
		return p, nil
	})
	check = func(sp *srcPackage) error {
		if sp.types != nil {
			return nil
		}
		sp.info = &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}, Uses: map[*ast.Ident]types.Object{},
			Defs: map[*ast.Ident]types.Object{}}
		conf := types.Config{Importer: imp, Error: func(error) {}} // stand-in imports make errors; see above
		sp.types, _ = conf.Check(sp.path, fset, sp.files, sp.info)
		return nil
	}
	for _, path := range slices.Sorted(maps.Keys(pkgs)) {
		if err := check(pkgs[path]); err != nil {
			return nil, nil, err
		}
	}
	return fset, pkgs, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// loadFieldReads type-checks the module (non-test files) and returns this
// package and the reads of its fields.
func loadFieldReads() (*srcPackage, fieldReads, error) {
	fset, pkgs, err := loadModule()
	if err != nil {
		return nil, nil, err
	}
	self := pkgs[modulePath+"/internal/config"]
	if self == nil {
		return nil, nil, fmt.Errorf("package %s/internal/config not loaded", modulePath)
	}
	shipped := shippedPackages(pkgs)
	if len(shipped) == 0 {
		return nil, nil, fmt.Errorf("no main package under %s", modulePath)
	}

	reads := make(fieldReads)
	usedHelpers := make(map[*types.Func]bool)
	for _, p := range pkgs {
		if p == self || !shipped[p.path] {
			continue
		}
		for _, f := range p.files {
			scanReads(p.info, f, self.types, func(v *types.Var, pos token.Pos) {
				reads[v] = append(reads[v], shortPos(fset.Position(pos)))
			}, func(fn *types.Func) { usedHelpers[fn] = true })
		}
	}

	// Helpers: functions of helperFiles read fields for their callers. They
	// count when used outside the package, directly or through another
	// helper so used.
	type helper struct {
		reads map[*types.Var][]string
		calls []*types.Func
	}
	helpers := make(map[*types.Func]*helper)
	for _, f := range self.files {
		if !slices.Contains(helperFiles, filepath.Base(fset.Position(f.Pos()).Filename)) {
			continue
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			fn, _ := self.info.Defs[fd.Name].(*types.Func)
			if fn == nil {
				continue
			}
			h := &helper{reads: make(map[*types.Var][]string)}
			scanReads(self.info, fd.Body, self.types, func(v *types.Var, pos token.Pos) {
				h.reads[v] = append(h.reads[v], shortPos(fset.Position(pos)))
			}, func(callee *types.Func) { h.calls = append(h.calls, callee) })
			helpers[fn] = h
		}
	}
	queue := make([]*types.Func, 0, len(usedHelpers))
	for fn := range usedHelpers {
		queue = append(queue, fn)
	}
	seen := make(map[*types.Func]bool)
	for len(queue) > 0 {
		fn := queue[0]
		queue = queue[1:]
		if seen[fn] {
			continue
		}
		seen[fn] = true
		h := helpers[fn]
		if h == nil {
			continue // declared outside helperFiles: its reads do not count
		}
		for v, where := range h.reads {
			for _, w := range where {
				reads[v] = append(reads[v], w+" via "+fn.Name())
			}
		}
		queue = append(queue, h.calls...)
	}
	return self, reads, nil
}

// shippedPackages are the module's packages imported, directly or not, by
// one of its main packages (non-test files only): test helpers such as
// servertest do not count.
func shippedPackages(pkgs map[string]*srcPackage) map[string]bool {
	shipped := make(map[string]bool)
	var visit func(p *srcPackage)
	visit = func(p *srcPackage) {
		if shipped[p.path] {
			return
		}
		shipped[p.path] = true
		for _, imp := range p.imports {
			if q, ok := pkgs[imp]; ok {
				visit(q)
			}
		}
	}
	for _, p := range pkgs {
		if p.name == "main" {
			visit(p)
		}
	}
	return shipped
}

// scanReads reports each read of a struct field declared in the package
// cfg (a selector expression that is not the target of a plain assignment;
// composite literal keys are not selectors) and each reference to a
// function or method of cfg.
func scanReads(info *types.Info, root ast.Node, cfg *types.Package, read func(*types.Var, token.Pos), call func(*types.Func)) {
	written := make(map[ast.Expr]bool)
	ast.Inspect(root, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok == token.ASSIGN {
				for _, lhs := range n.Lhs {
					written[ast.Unparen(lhs)] = true
				}
			}
		case *ast.SelectorExpr:
			if sel := info.Selections[n]; sel != nil {
				switch obj := sel.Obj().(type) {
				case *types.Var:
					if obj.Pkg() == cfg && obj.IsField() && !written[n] {
						read(obj, n.Sel.Pos())
					}
				case *types.Func:
					if obj.Pkg() == cfg {
						call(obj.Origin())
					}
				}
			}
		case *ast.Ident:
			if fn, ok := info.Uses[n].(*types.Func); ok && fn.Pkg() == cfg {
				call(fn.Origin())
			}
		}
		return true
	})
}

func shortPos(pos token.Position) string {
	dir := filepath.Base(filepath.Dir(pos.Filename))
	return fmt.Sprintf("%s/%s:%d", dir, filepath.Base(pos.Filename), pos.Line)
}

// fieldVar is the types.Var of the field name of the struct type t of this
// package.
func fieldVar(pkg *types.Package, t reflect.Type, name string) (*types.Var, error) {
	obj := pkg.Scope().Lookup(t.Name())
	if obj == nil {
		return nil, fmt.Errorf("type %s not found in %s", t.Name(), pkg.Path())
	}
	st, ok := obj.Type().Underlying().(*types.Struct)
	if !ok {
		return nil, fmt.Errorf("%s is not a struct", t.Name())
	}
	for v := range st.Fields() {
		if v.Name() == name {
			return v, nil
		}
	}
	return nil, fmt.Errorf("field %s.%s not found", t.Name(), name)
}

// TestEveryKeyIsReadOrRefused is the key audit: a key whose field nothing
// reads must be in unsupportedKeys (and is then refused unless left at its
// default, see TestUnsupportedKeysRefused).
func TestEveryKeyIsReadOrRefused(t *testing.T) {
	start := time.Now()
	self, reads, err := loadFieldReads()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("type-checked the module in %v", time.Since(start).Round(time.Millisecond))
	keys := auditKeys()
	if len(keys) < 50 {
		t.Fatalf("the key walk found only %d keys", len(keys))
	}
	unread := 0
	for _, k := range keys {
		v, err := fieldVar(self.types, k.owner, k.field)
		if err != nil {
			t.Errorf("%s: %v", k.key, err)
			continue
		}
		where := slices.Sorted(slices.Values(reads[v]))
		u, refused := unsupportedEntry(k.key)
		switch {
		case len(where) > 0 && refused:
			t.Logf("%-55s read at %s; refused unless default (%s)", k.key, where[0], u.reason)
		case len(where) > 0:
			t.Logf("%-55s read at %s", k.key, where[0])
		case refused:
			unread++
			t.Logf("%-55s refused unless default (%s)", k.key, u.reason)
		default:
			unread++
			t.Errorf("config key %s (field %s.%s) is accepted but nothing outside the config loader reads it: "+
				"an operator setting it would change nothing. Read it where it takes effect, or add it to "+
				"unsupportedKeys (unsupported.go) with the reason", k.key, k.owner.Name(), k.field)
		}
	}
	if unread == len(keys) {
		t.Fatal("no key is read anywhere: the audit itself is broken")
	}
}

// TestUnsupportedKeysTable checks that every entry names a real key, once,
// with a reason, and is not also a compatibility key.
func TestUnsupportedKeysTable(t *testing.T) {
	known := make(map[string]bool)
	for _, k := range auditKeys() {
		known[k.key] = true
	}
	seen := make(map[string]bool)
	for _, u := range unsupportedKeys {
		switch {
		case !known[u.key] || strings.Contains(u.key, "[]"):
			t.Errorf("unsupportedKeys: %s is not a configuration key", u.key)
		case seen[u.key]:
			t.Errorf("unsupportedKeys: %s is listed twice", u.key)
		case u.reason == "":
			t.Errorf("unsupportedKeys: %s has no reason", u.key)
		case isIgnoredKey(u.key):
			t.Errorf("unsupportedKeys: %s is also an ignored compatibility key", u.key)
		}
		seen[u.key] = true
	}
}

// nonDefault returns a value of v's type different from v.
func nonDefault(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			out.Set(reflect.New(v.Type().Elem()))
			out.Elem().Set(nonDefault(out.Elem()))
		} // else nil
	case reflect.Slice:
		out.Set(reflect.Append(reflect.AppendSlice(reflect.MakeSlice(v.Type(), 0, v.Len()+1), v),
			nonDefault(reflect.New(v.Type().Elem()).Elem())))
	case reflect.String:
		if strings.HasPrefix(v.String(), "http") {
			out.SetString("https://nondefault.example.com")
		} else {
			out.SetString("nondefault.example.com:9191")
		}
	case reflect.Bool:
		out.SetBool(!v.Bool())
	case reflect.Int:
		out.SetInt(v.Int() + 1)
	case reflect.Float64:
		out.SetFloat(v.Float() + 1)
	default:
		panic("nonDefault: unsupported kind " + v.Kind().String())
	}
	return out
}

// keyYAML is a one-key configuration file setting key to v.
func keyYAML(t *testing.T, key string, v reflect.Value) string {
	t.Helper()
	parts := strings.Split(key, ".")
	doc := v.Interface()
	for i := len(parts) - 1; i >= 0; i-- {
		doc = map[string]any{parts[i]: doc}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestUnsupportedKeysRefused sets each unsupported key to a value other than
// its default and requires a startup error naming the key and the reason;
// set explicitly to its default, the key is accepted.
func TestUnsupportedKeysRefused(t *testing.T) {
	for _, u := range unsupportedKeys {
		t.Run(u.key, func(t *testing.T) {
			def, ok := keyValue(testDefaults(), u.key)
			if !ok {
				t.Fatalf("%s is not a configuration key", u.key)
			}
			other := nonDefault(def)
			want := u.key + ": "
			check := func(how string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: setting %s to %v was accepted", how, u.key, other)
				}
				for line := range strings.SplitSeq(err.Error(), "\n") {
					if strings.Contains(line, want) && strings.Contains(line, u.reason) {
						return
					}
				}
				t.Errorf("%s: no error line naming %s with the reason %q:\n%v", how, u.key, u.reason, err)
			}

			cfg := testDefaults()
			f, _ := keyValue(cfg, u.key)
			f.Set(other)
			_, err := cfg.Validate()
			check("Validate", err)

			_, _, _, err = loadYAML(t, keyYAML(t, u.key, other))
			check("Load", err)

			if _, warnings, _, err := loadYAML(t, keyYAML(t, u.key, def)); err != nil || len(warnings) > 0 {
				t.Errorf("set explicitly to its default: err %v, warnings %q", err, warnings)
			}
		})
	}
}

// TestIgnoredKeysWarn: the compatibility keys (compat.go) are not fields, so
// the audit above does not see them; each must be warned about when set,
// never silently dropped, and none may shadow a real key.
func TestIgnoredKeysWarn(t *testing.T) {
	known := make(map[string]bool)
	for _, k := range auditKeys() {
		known[k.key] = true
	}
	for _, pattern := range ignoredKeys {
		key := strings.Replace(pattern, "*", "ttl", 1)
		if known[key] {
			t.Errorf("ignored compatibility key %s is also a configuration key", key)
			continue
		}
		cfg, warnings, path, err := loadYAML(t, keyYAML(t, key, reflect.ValueOf(false)))
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		want := []string{"FILE:" + fmt.Sprint(strings.Count(key, ".")+1) + ": " + ignoredWarning(key)}
		requireLines(t, key, replaceAll(warnings, path, "FILE"), want)
		if !reflect.DeepEqual(cfg, mustLoadDefaults(t)) {
			t.Errorf("%s changed the configuration", key)
		}
	}
}

func mustLoadDefaults(t *testing.T) *Config {
	t.Helper()
	cfg, _, err := Load(LoadOptions{Environ: testEnviron()})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAuditKeys checks the walk against the loaders: each key outside lists
// of objects is found by keyValue (the field lookup of validation), and no
// key appears twice.
func TestAuditKeys(t *testing.T) {
	seen := make(map[string]bool)
	for _, k := range auditKeys() {
		if seen[k.key] {
			t.Errorf("%s found twice", k.key)
		}
		seen[k.key] = true
		if _, ok := keyValue(testDefaults(), k.key); !ok && !strings.Contains(k.key, "[]") {
			t.Errorf("%s: not found by keyValue", k.key)
		}
	}
}

// TestUnsupportedKeyMessage pins the wording of a refusal. No key is
// unsupported in this version, so the test lists two real keys itself.
func TestUnsupportedKeyMessage(t *testing.T) {
	saved := unsupportedKeys
	t.Cleanup(func() { unsupportedKeys = saved })
	unsupportedKeys = []unsupportedKey{
		{"auth.token_signing.issuer", "the platform mints no tokens in this test"},
		{"auth.access_keys.accepted_formats", "access keys are not built in this test"},
	}
	c := testDefaults()
	c.Auth.TokenSigning.Issuer = ptr("https://nmp.example.com/apis/auth")
	c.Auth.AccessKeys.AcceptedFormats = nil
	_, err := c.Validate()
	requireLines(t, "errors", errLines(err, ""), []string{
		"auth.token_signing.issuer: the platform mints no tokens in this test; remove the key or set it to its default null",
		`auth.access_keys.accepted_formats: access keys are not built in this test; remove the key or set it to its default ["jwt"]`,
	})
	c.Auth.TokenSigning.Issuer = ptr("")
	c.Auth.AccessKeys.AcceptedFormats = []string{"jwt"}
	if _, err := c.Validate(); err != nil {
		t.Errorf("unsupported keys at their defaults refused: %v", err)
	}
}
