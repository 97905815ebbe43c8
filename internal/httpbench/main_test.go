package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// The benchmark itself is never run by go test (it builds nmp and needs
// wrk); these tests check its flags, its wrk parsing and its table.

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 5*time.Second || o.rounds != 3 || o.connections != 16 || o.workspaces != 10000 || o.visible != 20 ||
		o.token != "rs256" || o.accessLog != "" {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"-duration", "2s", "-rounds", "5", "-only", "empty,list-on", "-token", "unsigned", "-access-log", "off"}, io.Discard)
	if err != nil || o.duration != 2*time.Second || o.rounds != 5 || o.only != "empty,list-on" || o.token != "unsigned" || o.accessLog != "off" {
		t.Errorf("parseFlags = %+v, %v", o, err)
	}
	for _, bad := range [][]string{
		{"-duration", "100ms"}, {"-rounds", "0"}, {"-threads", "32"}, {"-visible", "0"},
		{"-workspaces", "5", "-visible", "6"}, {"-only", "nope"}, {"extra"}, {"-unknown"},
		{"-token", "hs256"}, {"-access-log", "verbose"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

func TestLuaScript(t *testing.T) {
	got := luaScript(target{method: "POST", body: `{"a":"b"}`, header: map[string]string{"X-B": "2", "Content-Type": "application/json"}})
	want := "wrk.method = \"POST\"\nwrk.body = \"{\\\"a\\\":\\\"b\\\"}\"\n" +
		"wrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"X-B\"] = \"2\"\n"
	if got != want {
		t.Errorf("luaScript =\n%s\nwant\n%s", got, want)
	}
	for _, tg := range targets("ws-1", unsignedToken) {
		if strings.Contains(tg.path, " ") || tg.method == "" {
			t.Errorf("target %+v", tg)
		}
	}
}

const wrkOutput = `Running 5s test @ http://127.0.0.1:4000/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.00us    1.02ms  40.00ms   95.00%
    Req/Sec    15.00k     1.00k   18.00k    70.00%
  Latency Distribution
     50%  420.00us
     75%  600.00us
     90%    1.00ms
     99%    3.50ms
  150000 requests in 5.00s, 10.00MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  30000.00
Transfer/sec:      2.00MB
`

func TestParseWrk(t *testing.T) {
	s, err := parseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	if s.requests != 150000 || s.rps != 30000 || s.p50 != 420*time.Microsecond || s.p99 != 3500*time.Microsecond ||
		s.non2xx != 3 || s.errors != 3 {
		t.Errorf("parseWrk = %+v", s)
	}
	if _, err := parseWrk("nothing"); err == nil {
		t.Error("parseWrk(garbage): no error")
	}
}

func TestTable(t *testing.T) {
	samples := map[string][]sample{
		"empty": {{requests: 100000, rps: 20000, p50: 400 * time.Microsecond, p99: 2 * time.Millisecond, cpu: 2 * time.Second},
			{requests: 100000, rps: 22000, p50: 300 * time.Microsecond, p99: 4 * time.Millisecond, cpu: 2 * time.Second}},
		"list-on":    {{requests: 10000, rps: 2000, p50: 5 * time.Millisecond, p99: 20 * time.Millisecond, cpu: time.Second, non2xx: 1}},
		"empty-list": {{requests: 10000, rps: 2000, p50: time.Millisecond, p99: 2 * time.Millisecond, cpu: time.Second / 4}},
	}
	rs := aggregate([]string{"empty", "empty-list", "list-on", "absent"}, samples, "empty", map[string]string{"list-on": "empty-list"})
	if len(rs) != 3 || rs[0].cpuPerReq != 20*time.Microsecond || rs[2].cpuPerReq != 100*time.Microsecond || rs[2].ratio != 5 ||
		rs[2].sameRatio != 4 || rs[0].sameRatio != 0 {
		t.Fatalf("aggregate = %+v", rs)
	}
	if rs[0].rps != 21000 || rs[0].p50 != 350*time.Microsecond {
		t.Errorf("medians = %+v", rs[0])
	}
	var b bytes.Buffer
	if err := renderTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	want := `| Target | Requests/s | p50 | p99 | CPU/request | × baseline CPU | × same request on the empty handler |
|---|---:|---:|---:|---:|---:|---:|
| empty | 21000 | 350 µs | 3.00 ms | 20.0 µs | 1.00× | – |
| empty-list | 2000 | 1.00 ms | 2.00 ms | 25.0 µs | 1.25× | – |
| list-on (1 non-2xx, 0 socket errors) | 2000 | 5.00 ms | 20.00 ms | 100.0 µs | 5.00× | 4.00× |
`
	if b.String() != want {
		t.Errorf("table =\n%s\nwant\n%s", b.String(), want)
	}
}
