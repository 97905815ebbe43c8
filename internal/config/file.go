package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"gopkg.in/yaml.v3"
)

// fileLoader merges a YAML configuration file into a Config, collecting
// warnings and errors that name the file, the line and the dotted key.
type fileLoader struct {
	cfg  *Config
	name string
	loadResult
}

// loadFile merges the file at path into cfg.
func loadFile(cfg *Config, path string) loadResult {
	data, err := os.ReadFile(path)
	if err != nil {
		return loadResult{errs: []error{fmt.Errorf("config file: %w", err)}}
	}
	l := &fileLoader{cfg: cfg, name: path}
	l.load(data)
	return l.loadResult
}

func (l *fileLoader) load(data []byte) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) { // io.EOF: empty file, defaults apply
			l.errs = append(l.errs, fmt.Errorf("%s: %w", l.name, err))
		}
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		l.errs = append(l.errs, fmt.Errorf("%s: more than one YAML document", l.name))
		return
	}
	if len(doc.Content) == 0 {
		return
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		l.errs = append(l.errs, fmt.Errorf("%s:%d: the top level must be a mapping of sections", l.name, root.Line))
		return
	}
	l.decodeMapping(root, reflect.ValueOf(l.cfg).Elem(), "")
}

func (l *fileLoader) errorf(n *yaml.Node, key, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s:%d: %s: %s", l.name, n.Line, key, fmt.Sprintf(format, args...)))
	l.failed = append(l.failed, key)
}

func (l *fileLoader) warnf(n *yaml.Node, format string, args ...any) {
	l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: %s", l.name, n.Line, fmt.Sprintf(format, args...)))
}

// decodeMapping merges the mapping n into the struct v whose dotted key is
// prefix ("" for the top level).
func (l *fileLoader) decodeMapping(n *yaml.Node, v reflect.Value, prefix string) {
	seen := make(map[string]bool)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolve(n.Content[i]), n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			l.errorf(kn, joinKey(prefix, "?"), "keys must be strings")
			continue
		}
		key := joinKey(prefix, kn.Value)
		if seen[kn.Value] {
			l.errorf(kn, key, "duplicate key")
			continue
		}
		seen[kn.Value] = true
		f, ok := fieldByKey(v, kn.Value)
		switch {
		case ok:
			l.decodeValue(vn, f, key)
		case prefix == "":
			l.warnf(kn, "unknown top-level section %q ignored", kn.Value)
		default:
			l.unknownKey(kn, vn, key)
		}
	}
}

func (l *fileLoader) unknownKey(kn, vn *yaml.Node, key string) {
	if !isIgnoredKey(key) {
		l.errorf(kn, key, "unknown key")
		return
	}
	err := checkIgnored(key, func() (bool, error) {
		var b bool
		if err := resolve(vn).Decode(&b); err != nil {
			return false, typeError(vn, reflect.TypeFor[bool]())
		}
		return b, nil
	})
	if err != nil {
		l.errorf(vn, key, "%v", err)
		return
	}
	l.warnf(kn, "%s", ignoredWarning(key))
}

// decodeValue sets the field v (dotted key key) from the node n.
func (l *fileLoader) decodeValue(n *yaml.Node, v reflect.Value, key string) {
	n = resolve(n)
	switch shapeOf(v.Type()) {
	case shapeSection:
		l.decodeSection(n, v, key)
	case shapeObjectList:
		l.decodeObjectList(n, v, key)
	default:
		l.decodeLeaf(n, v, key)
	}
}

// decodeSection merges the mapping n into the struct v; null (an empty
// section) keeps the defaults.
func (l *fileLoader) decodeSection(n *yaml.Node, v reflect.Value, key string) {
	switch {
	case isNull(n):
	case n.Kind == yaml.MappingNode:
		l.decodeMapping(n, v, key)
	default:
		l.errorf(n, key, "%v", typeError(n, v.Type()))
	}
}

// decodeObjectList replaces the list v by the sequence of mappings n.
func (l *fileLoader) decodeObjectList(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		l.cfg.markExplicit(key)
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, key, "%v", typeError(n, v.Type()))
		return
	}
	list := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		itemKey := fmt.Sprintf("%s[%d]", key, i)
		if item.Kind != yaml.MappingNode {
			l.errorf(item, itemKey, "%v", typeError(item, v.Type().Elem()))
			continue
		}
		l.decodeMapping(item, list.Index(i), itemKey)
	}
	v.Set(list)
	l.cfg.markExplicit(key)
}

// decodeLeaf sets a scalar, nullable or list-of-scalars field. Null sets
// the zero value (nil for nullable keys).
func (l *fileLoader) decodeLeaf(n *yaml.Node, v reflect.Value, key string) {
	if isNull(n) {
		v.Set(reflect.Zero(v.Type()))
		l.cfg.markExplicit(key)
		return
	}
	p := reflect.New(v.Type())
	if truncatesToInt(n, v.Type()) || n.Decode(p.Interface()) != nil {
		l.errorf(n, key, "%v", typeError(n, v.Type()))
		return
	}
	v.Set(p.Elem())
	l.cfg.markExplicit(key)
}

// truncatesToInt reports a non-integer scalar for an integer field, which
// yaml.v3 would silently truncate (80.5 → 80).
func truncatesToInt(n *yaml.Node, t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Int && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!int"
}

// typeError describes a node that does not fit type t. It never includes
// the value, which may be a secret.
func typeError(n *yaml.Node, t reflect.Type) error {
	return fmt.Errorf("expected %s, got %s", describeType(t), describeNode(n))
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a value tagged " + n.ShortTag()
}

// resolve follows aliases. Recursion through aliases is bounded by the depth
// of the Config type, which the decoders follow.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}
