package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

const envPrefix = "NMP_"

// envAliases map short variable names to dotted keys. They are applied after
// the NMP_<SECTION>_<KEY> variables and therefore win over them.
var envAliases = map[string]string{
	"NMP_DATA_DIR":        "platform.data_dir",
	"NMP_SEED_ON_STARTUP": "platform.seed_on_startup",
}

// environMap turns an os.Environ()-style list into a map; later entries win.
func environMap(environ []string) map[string]string {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// envLoader applies NMP_* variables to a Config.
type envLoader struct {
	cfg *Config
	loadResult
}

// applyEnv applies the NMP_<SECTION>_<KEY> variables and the aliases of env
// to cfg. Other variables, including other NMP_* names, are ignored.
func applyEnv(cfg *Config, env map[string]string) loadResult {
	l := &envLoader{cfg: cfg}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if path, ok := envPath(name); ok {
			l.set(name, path, env[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(envAliases)) {
		if value, ok := env[name]; ok {
			l.set(name, strings.Split(envAliases[name], "."), value)
		}
	}
	return l.loadResult
}

// envPath maps NMP_<SECTION>_<KEY> to a key path: SECTION is the longest
// matching section (DEV_IDP contains an underscore) and KEY's levels are
// separated by "__". ok is false for names outside every section.
func envPath(name string) (path []string, ok bool) {
	var section, rest string
	for _, s := range sectionKeys() {
		prefix := envPrefix + strings.ToUpper(s) + "_"
		if strings.HasPrefix(name, prefix) && len(s) > len(section) {
			section, rest = s, name[len(prefix):]
		}
	}
	if section == "" {
		return nil, false
	}
	return append([]string{section}, strings.Split(strings.ToLower(rest), "__")...), true
}

func (l *envLoader) errorf(name, key, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("environment %s: %s", name, fmt.Sprintf(format, args...)))
	l.failed = append(l.failed, key)
}

// set assigns value to the key path of the variable name.
func (l *envLoader) set(name string, path []string, value string) {
	key := strings.Join(path, ".")
	v := reflect.ValueOf(l.cfg).Elem()
	for i, part := range path {
		f, ok := fieldByKey(v, part)
		if !ok {
			l.unknownKey(name, key, value)
			return
		}
		last := i == len(path)-1
		switch shapeOf(f.Type()) {
		case shapeObjectList, shapeMap:
			l.errorf(name, key, "%s is %s and cannot be set from the environment",
				strings.Join(path[:i+1], "."), describeType(f.Type()))
			return
		case shapeSection:
			if last {
				l.errorf(name, key, "%s is a section; set its keys individually", key)
				return
			}
			v = f
		default:
			if !last {
				l.unknownKey(name, key, value)
				return
			}
			l.setLeaf(name, key, f, value)
		}
	}
}

func (l *envLoader) setLeaf(name, key string, f reflect.Value, value string) {
	parsed, err := parseText(f.Type(), value)
	if err != nil {
		l.errorf(name, key, "%s: %v", key, err)
		return
	}
	f.Set(parsed)
	l.cfg.markExplicit(key)
}

func (l *envLoader) unknownKey(name, key, value string) {
	if !isIgnoredKey(key) {
		l.errorf(name, key, "unknown key %s", key)
		return
	}
	if err := checkIgnored(key, func() (bool, error) { return parseBool(value) }); err != nil {
		l.errorf(name, key, "%s: %v", key, err)
		return
	}
	l.warnings = append(l.warnings, fmt.Sprintf("environment %s: %s", name, ignoredWarning(key)))
}
