package config

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docsFile is the configuration reference, relative to this package.
const docsFile = "../../docs/configuration.md"

// notBuiltMarker is how docs/configuration.md marks a key of unsupportedKeys
// in its table row.
const notBuiltMarker = "Not built in this version"

// docKeyRows maps each key named in the first cell of a table row of the
// reference (`key`) to the row. Rows whose first cell is not a single
// backticked key of a known section are skipped.
func docKeyRows(t *testing.T, doc string) map[string]string {
	t.Helper()
	sections := sectionKeys()
	firstCell := regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|")
	rows := make(map[string]string)
	for line := range strings.SplitSeq(doc, "\n") {
		m := firstCell.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := m[1]
		section, _, _ := strings.Cut(key, ".")
		if !strings.Contains(key, ".") || !slices.Contains(sections, section) {
			continue
		}
		if _, dup := rows[key]; dup {
			t.Errorf("%s: key %s has two table rows", docsFile, key)
		}
		rows[key] = line
	}
	return rows
}

// TestDocsListEveryKey keeps docs/configuration.md complete: every key of
// the loaders' walk has a table row, no row names a key that does not
// exist, each unsupported key's row (and only such a row) says it is not
// built, and every compatibility key is mentioned.
func TestDocsListEveryKey(t *testing.T) {
	data, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	rows := docKeyRows(t, doc)

	known := make(map[string]bool)
	for _, k := range auditKeys() {
		known[k.key] = true
		row, ok := rows[k.key]
		if !ok {
			t.Errorf("%s: no table row for the configuration key `%s` (field %s.%s): add one with its default, type and meaning",
				docsFile, k.key, k.owner.Name(), k.field)
			continue
		}
		_, unsupported := unsupportedEntry(k.key)
		switch marked := strings.Contains(row, notBuiltMarker); {
		case unsupported && !marked:
			t.Errorf("%s: the row of `%s` must say %q: the key is refused unless left at its default (unsupported.go)",
				docsFile, k.key, notBuiltMarker)
		case !unsupported && marked:
			t.Errorf("%s: the row of `%s` says %q, but the key is supported", docsFile, k.key, notBuiltMarker)
		}
	}
	if len(known) < 50 {
		t.Fatalf("the key walk found only %d keys", len(known))
	}
	for key := range rows {
		if !known[key] {
			t.Errorf("%s: a table row names `%s`, which is not a configuration key", docsFile, key)
		}
	}
	for _, u := range unsupportedKeys {
		if !strings.Contains(doc, "`"+u.key+"`") {
			t.Errorf("%s: the unsupported key `%s` is not mentioned", docsFile, u.key)
		}
	}
	for _, k := range ignoredKeys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("%s: the compatibility key `%s` (accepted and ignored, compat.go) is not mentioned", docsFile, k)
		}
	}
	if !strings.Contains(doc, "`"+workloadExchangeKey+": true`") {
		t.Errorf("%s: does not say that `%s: true` is an error", docsFile, workloadExchangeKey)
	}
}
