package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// unsupportedKey is a key of config.md whose feature this version does not
// build. Left at its default (explicitly or not, as NMP configuration files
// often do) it is accepted; any other value is a startup error naming the
// key and the reason, so that no setting silently does nothing.
type unsupportedKey struct {
	key    string
	reason string
}

// unsupportedKeys is the one list of such keys. The key audit test requires
// every key to be read by the server or listed here.
var unsupportedKeys = []unsupportedKey{}

// unsupportedDefaults holds the defaults the keys are compared with (none
// of them depends on the environment).
var unsupportedDefaults = sync.OnceValue(func() *Config {
	return defaults(func(string) (string, bool) { return "", false })
})

// validateUnsupported refuses unsupported keys set to anything but their
// default, whether or not the value is otherwise valid.
func (c *Config) validateUnsupported(p *problems) {
	def := unsupportedDefaults()
	for _, u := range unsupportedKeys {
		v, ok := keyValue(c, u.key)
		d, _ := keyValue(def, u.key)
		if !ok || sameSetting(v, d) {
			continue
		}
		p.errorf(u.key, "%s; remove the key or set it to its default %s", u.reason, describeValue(d))
	}
}

// keyValue is the (settable) field of c behind the dotted key.
func keyValue(c *Config, key string) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	for part := range strings.SplitSeq(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		f, ok := fieldByKey(v, part)
		if !ok {
			return reflect.Value{}, false
		}
		v = f
	}
	return v, true
}

// sameSetting reports equal values; null, an empty string and an empty list
// are all the same "unset".
func sameSetting(a, b reflect.Value) bool {
	return reflect.DeepEqual(a.Interface(), b.Interface()) || (isUnset(a) && isUnset(b))
}

func isUnset(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return v.IsNil() || (v.Elem().Kind() == reflect.String && v.Elem().String() == "")
	case reflect.Slice:
		return v.Len() == 0
	case reflect.String:
		return v.String() == ""
	}
	return false
}

// describeValue renders a default in YAML terms: null, "text", 5, [jwt].
func describeValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return "null"
		}
		return describeValue(v.Elem())
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range items {
			items[i] = describeValue(v.Index(i))
		}
		return "[" + strings.Join(items, ", ") + "]"
	case reflect.String:
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(v.Interface())
}
