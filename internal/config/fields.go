package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// shape classifies a configuration field for the file and environment
// loaders.
type shape int

const (
	shapeLeaf       shape = iota // scalar, pointer to scalar or list of scalars
	shapeSection                 // nested struct
	shapeObjectList              // list of structs
	shapeMap                     // map (none today; kept out of the environment)
)

func shapeOf(t reflect.Type) shape {
	switch {
	case t.Kind() == reflect.Struct:
		return shapeSection
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return shapeObjectList
	case t.Kind() == reflect.Map:
		return shapeMap
	}
	return shapeLeaf
}

// yamlKey is the YAML key of a struct field ("" when it has none).
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return ""
	}
	return name
}

// fieldByKey returns the field of the struct v whose YAML key is key.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	if key == "" {
		return reflect.Value{}, false
	}
	t := v.Type()
	for i := range t.NumField() {
		if yamlKey(t.Field(i)) == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// sectionKeys lists the top-level YAML keys of Config.
func sectionKeys() []string {
	t := reflect.TypeFor[Config]()
	var keys []string
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// describeType names what a field of type t accepts, for error messages.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem()) + " or null"
	case reflect.Struct:
		return "a mapping"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return "a list of mappings"
		}
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describeType(t.Elem()), "a "), "an ") + "s"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// parseText converts an environment value to a value of type t. An empty
// value is the zero value: nil for pointers, an empty list for lists.
func parseText(t reflect.Type, s string) (reflect.Value, error) {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Pointer:
		if s == "" {
			return v, nil
		}
		elem, err := parseText(t.Elem(), s)
		if err != nil {
			return v, err
		}
		v.Set(reflect.New(t.Elem()))
		v.Elem().Set(elem)
	case reflect.Slice:
		items := splitList(s)
		v.Set(reflect.MakeSlice(t, 0, len(items)))
		for _, item := range items {
			elem, err := parseText(t.Elem(), item)
			if err != nil {
				return v, err
			}
			v.Set(reflect.Append(v, elem))
		}
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := parseBool(s)
		if err != nil {
			return v, err
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := parseInt(s)
		if err != nil {
			return v, err
		}
		v.SetInt(int64(n))
	case reflect.Float64:
		f, err := parseFloat(s)
		if err != nil {
			return v, err
		}
		v.SetFloat(f)
	default:
		return v, fmt.Errorf("unsupported type %s", t)
	}
	return v, nil
}

// splitList splits a comma-separated list, trimming items and dropping
// empty ones.
func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// parseBool accepts true/false/1/0/yes/no in any case; "" is false.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no", "":
		return false, nil
	}
	return false, fmt.Errorf("expected a boolean (true/false/1/0/yes/no), got %q", s)
}

func parseInt(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("expected an integer, got %q", s)
	}
	return n, nil
}

func parseFloat(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("expected a finite number, got %q", s)
	}
	return f, nil
}
