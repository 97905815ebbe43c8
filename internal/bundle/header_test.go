package bundle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nmp-project/nmp/internal/bundle"
)

const etag = `"0123456789abcdef0123456789abcdef"`

func TestNoneMatch(t *testing.T) {
	const op = "0123456789abcdef0123456789abcdef" // the opaque part
	cases := []struct {
		name  string
		value string
		want  bool
	}{
		{"absent", "", false},
		{"blank", "  \t ", false},
		{"only commas", " , ,", false},
		{"quoted", `"` + op + `"`, true},
		{"bare", op, true},
		{"weak quoted", `W/"` + op + `"`, true},
		{"weak bare", "W/" + op, true},
		{"star", "*", true},
		{"star in a list", `"other", *`, true},
		{"quoted star is a tag, not a wildcard", `"*"`, false},
		{"first of a list", `"` + op + `", "other"`, true},
		{"last of a list", `"a", W/"b",` + `"` + op + `"`, true},
		{"list without blanks", `"a","` + op + `"`, true},
		{"bare list", "a," + op + ",b", true},
		{"blanks around", "  \"" + op + "\"  ", true},
		{"comma inside a quoted tag", `"x,` + op + `"`, false},
		{"other tag", `"ffffffffffffffffffffffffffffffff"`, false},
		{"prefix of the tag", `"0123456789abcdef"`, false},
		{"tag with more", `"` + op + `0"`, false},
		{"unterminated quote", `"` + op, true},
		{"unterminated quote then more", `"` + op + `, "a"`, false},
		{"lower-case weak prefix is not one", `w/"` + op + `"`, false},
		{"upper-case tag differs", `"` + strings.ToUpper(op) + `"`, false},
		{"two header lines joined", `"a"` + "," + `"` + op + `"`, true},
		{"only W/", "W/", false},
		{"empty quotes", `""`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := bundle.NoneMatch(tc.value, etag); got != tc.want {
				t.Fatalf("NoneMatch(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}

func TestPreferWait(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		want  time.Duration
		ok    bool
	}{
		{"absent", nil, 0, false},
		{"as OPA sends it", []string{"modes=snapshot,delta;wait=30"}, 30 * time.Second, true},
		{"alone", []string{"wait=5"}, 5 * time.Second, true},
		{"blanks and case", []string{"respond-async, WAIT = 7 "}, 7 * time.Second, true},
		{"quoted", []string{`wait="9"`}, 9 * time.Second, true},
		{"second line", []string{"modes=snapshot", "wait=4"}, 4 * time.Second, true},
		{"capped", []string{"wait=100000"}, bundle.MaxWait, true},
		{"cap exactly", []string{"wait=300"}, bundle.MaxWait, true},
		{"huge", []string{"wait=99999999999999999999999"}, 0, false},
		{"zero", []string{"wait=0"}, 0, false},
		{"negative", []string{"wait=-5"}, 0, false},
		{"plus sign", []string{"wait=+5"}, 0, false},
		{"fraction", []string{"wait=1.5"}, 0, false},
		{"text", []string{"wait=soon"}, 0, false},
		{"empty", []string{"wait="}, 0, false},
		{"no value", []string{"wait"}, 0, false},
		{"first wait decides", []string{"wait=x;wait=5"}, 0, false},
		{"other preference", []string{"waiting=5"}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := bundle.PreferWait(tc.lines)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("PreferWait(%q) = %v %v, want %v %v", tc.lines, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzIfNoneMatch feeds arbitrary If-None-Match values: the parser never
// panics, matches only through "*" or the tag itself, and a list that
// holds the tag in any accepted form matches whatever surrounds it.
func FuzzIfNoneMatch(f *testing.F) {
	for _, s := range []string{"", "*", etag, "W/" + etag, `"a", ` + etag, `"x,`, `W/`, `"`, ",,", "W/W/\"a\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got := bundle.NoneMatch(value, etag)
		if got && !strings.Contains(value, "*") && !strings.Contains(value, etag[1:len(etag)-1]) {
			t.Fatalf("%q matched without the tag or *", value)
		}
		if strings.TrimSpace(value) == "" && got {
			t.Fatalf("blank value %q matched", value)
		}
		// The tag in any accepted form matches as the first item of a list
		// whatever follows, and after anything without quotes.
		for _, form := range []string{etag, "W/" + etag, etag[1 : len(etag)-1]} {
			if v := form + ", " + value; !bundle.NoneMatch(v, etag) {
				t.Fatalf("%q did not match", v)
			}
			if v := value + ", " + form; !strings.Contains(value, `"`) && !bundle.NoneMatch(v, etag) {
				t.Fatalf("%q did not match", v)
			}
		}
		_, _ = bundle.PreferWait([]string{value})
	})
}
