package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestTableOutput(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		route string // when set, answered with body
		body  string
		want  string
	}{
		{
			name: "workspaces list",
			args: []string{"workspaces", "list"},
			want: "" +
				"NAME      DESCRIPTION   CREATED_AT             CREATED_BY\n" +
				"ml-team   ML            2026-01-02T03:04:05Z   alice@example.com\n" +
				"default   -             2025-12-31T23:00:00Z   -\n",
		},
		{
			name: "members list",
			args: []string{"members", "list", "-w", "ml-team"},
			want: "" +
				"PRINCIPAL         ROLES           GRANTED_AT             GRANTED_BY          LAST SEEN\n" +
				"*                 Editor,Viewer   2026-01-02T03:04:05Z   alice@example.com   -\n" +
				"bob@example.com   Viewer          2026-01-03T00:00:00Z   -                   never\n",
		},
		{
			name: "workspace get",
			args: []string{"workspaces", "get", "ml-team"},
			want: "" +
				"NAME      DESCRIPTION   CREATED_AT             CREATED_BY\n" +
				"ml-team   ML            2026-01-02T03:04:05Z   alice@example.com\n",
		},
		{
			name: "member delete",
			args: []string{"members", "delete", "*", "-w", "ml-team"},
			want: "" +
				"MESSAGE          ID   DELETED_AT\n" +
				"Member removed   *    2026-01-02T03:04:05Z\n",
		},
		{
			name:  "empty workspace list",
			args:  []string{"workspaces", "list"},
			route: "GET " + wsPath, body: pageJSON(1, 0, 0),
			want: "No results.\n",
		},
		{
			name:  "empty member list",
			args:  []string{"members", "list", "-w", "ml-team"},
			route: "GET " + membersPath, body: `{"data":[]}`,
			want: "No results.\n",
		},
		{
			name:  "cells cannot break the layout",
			args:  []string{"workspaces", "get", "ml-team"},
			route: "GET " + wsPath + "/ml-team", body: `{"name":"ml-team","description":"two\nlines\tand\u001b[2J","created_at":"bad-time"}`,
			want: "" +
				"NAME      DESCRIPTION         CREATED_AT   CREATED_BY\n" +
				"ml-team   two lines and [2J   bad-time     -\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t)
			if tt.route != "" {
				api.set(tt.route, 200, tt.body)
			}
			res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", tt.args...)
			if res.code != 0 || res.stdout != tt.want {
				t.Errorf("exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", res.code, res.stdout, tt.want, res.stderr)
			}
		})
	}
}

func TestStructuredOutput(t *testing.T) {
	commands := []struct {
		name     string
		args     []string
		wantList int    // > 0: an array of that many items
		wantKey  string // for single objects: a key that must be present
	}{
		{"workspaces list", []string{"workspaces", "list"}, 2, ""},
		{"members list", []string{"members", "list", "-w", "ml-team"}, 2, ""},
		{"workspace get", []string{"workspaces", "get", "ml-team"}, 0, "created_by"},
		{"workspace create", []string{"workspaces", "create", "ml-team"}, 0, "description"},
		{"workspace delete", []string{"workspaces", "delete", "ml-team"}, 0, "deleted_at"},
		{"member create", []string{"members", "create", "*", "--roles", "Viewer", "-w", "ml-team"}, 0, "roles"},
		{"current-context", []string{"config", "current-context"}, 0, ""},
	}
	formats := []struct {
		name      string
		flags     []string
		env       map[string]string
		unmarshal func([]byte, any) error
	}{
		{"json via -o", []string{"-o", "json"}, nil, json.Unmarshal},
		{"json via --output", []string{"--output", "json"}, nil, json.Unmarshal},
		{"json via --output-format=", []string{"--output-format=json"}, nil, json.Unmarshal},
		{"json via NMP_OUTPUT_FORMAT", nil, map[string]string{"NMP_OUTPUT_FORMAT": "json"}, json.Unmarshal},
		{"yaml via -f", []string{"-f", "yaml"}, nil, yaml.Unmarshal},
		{"flag beats environment", []string{"-o", "yaml"}, map[string]string{"NMP_OUTPUT_FORMAT": "json"}, yaml.Unmarshal},
	}
	for _, c := range commands {
		for _, f := range formats {
			t.Run(c.name+"/"+f.name, func(t *testing.T) {
				api := newFakeAPI(t)
				env := map[string]string{
					"NMP_BASE_URL":        api.URL,
					"NMP_CONFIG_FILE":     writeConfig(t, configWithContext(api.URL, "", "")),
					"NMP_CURRENT_CONTEXT": "dev",
				}
				for k, v := range f.env {
					env[k] = v
				}
				res := runCLI(t, env, "", append(append([]string{}, c.args...), f.flags...)...)
				if res.code != 0 {
					t.Fatalf("exit %d: %s", res.code, res.stderr)
				}
				var v any
				if err := f.unmarshal([]byte(res.stdout), &v); err != nil {
					t.Fatalf("stdout does not parse: %v\n%s", err, res.stdout)
				}
				switch got := v.(type) {
				case []any:
					if len(got) != c.wantList {
						t.Errorf("%d items, want %d", len(got), c.wantList)
					}
				case map[string]any:
					if _, ok := got[c.wantKey]; !ok || c.wantList > 0 {
						t.Errorf("object %v, want key %q", got, c.wantKey)
					}
				case string:
					if got != "dev" {
						t.Errorf("got %q", got)
					}
				default:
					t.Errorf("unexpected %T", v)
				}
			})
		}
	}
}

func TestJSONOutputShape(t *testing.T) {
	api := newFakeAPI(t)
	api.set("GET "+wsPath, 200, pageJSON(1, 1, 1, defaultWSJSON))
	res := runCLI(t, map[string]string{"NMP_BASE_URL": api.URL}, "", "workspaces", "list", "-o", "json")
	want := `[
  {
    "id": "1a2b",
    "name": "default",
    "description": null,
    "created_at": "2025-12-31T23:00:00Z",
    "created_by": null,
    "updated_at": "2025-12-31T23:00:00Z",
    "updated_by": null
  }
]
`
	if res.stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", res.stdout, want)
	}
	empty := newFakeAPI(t)
	empty.set("GET "+wsPath, 200, pageJSON(1, 0, 0))
	if res := runCLI(t, map[string]string{"NMP_BASE_URL": empty.URL}, "", "workspaces", "list", "-o", "json"); res.stdout != "[]\n" {
		t.Errorf("empty list printed %q, want []", res.stdout)
	}
	if res := runCLI(t, map[string]string{"NMP_BASE_URL": empty.URL}, "", "workspaces", "list", "-o", "yaml"); res.stdout != "[]\n" {
		t.Errorf("empty YAML list printed %q, want []", res.stdout)
	}
}

func TestOutputFormatFromContextPreference(t *testing.T) {
	api := newFakeAPI(t)
	cfg := writeConfig(t, strings.Replace(configWithContext(api.URL, "", "ml-team"),
		`workspace: "ml-team"}`, `workspace: "ml-team", preferences: {output_format: json}}`, 1))
	res := runCLI(t, map[string]string{"NMP_CONFIG_FILE": cfg}, "", "members", "list")
	var items []any
	if err := json.Unmarshal([]byte(res.stdout), &items); err != nil || len(items) != 2 {
		t.Errorf("stdout %q is not the JSON member array: %v (stderr %q)", res.stdout, err, res.stderr)
	}
}
