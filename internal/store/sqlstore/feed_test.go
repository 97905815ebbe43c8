package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv"
)

const testJTI = "ak_0123456789abcdef0123456789abcdef"

func TestParseNotice(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    store.PolicyEvent
		wantErr bool
	}{
		{"revision", "42", store.PolicyEvent{Revision: 42}, false},
		{"largest revision", "9223372036854775807", store.PolicyEvent{Revision: 9223372036854775807}, false},
		{"access key", "ak:" + testJTI, store.PolicyEvent{AccessKey: testJTI}, false},
		{"empty", "", store.PolicyEvent{}, true},
		{"zero revision", "0", store.PolicyEvent{}, true},
		{"negative revision", "-3", store.PolicyEvent{}, true},
		{"revision overflow", "9223372036854775808", store.PolicyEvent{}, true},
		{"revision with text", "42x", store.PolicyEvent{}, true},
		{"prefix only", "ak:", store.PolicyEvent{}, true},
		{"bad jti", "ak:ak_XYZ", store.PolicyEvent{}, true},
		{"jti without prefix", testJTI, store.PolicyEvent{}, true},
		{"uppercase prefix", "AK:" + testJTI, store.PolicyEvent{}, true},
		{"trailing space", "ak:" + testJTI + " ", store.PolicyEvent{}, true},
		{"unknown prefix", "rb:" + testJTI, store.PolicyEvent{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNotice(tc.payload)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseNotice(%q) error %v, want error %v", tc.payload, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, errMalformedNotice) {
				t.Fatalf("error %v, want errMalformedNotice", err)
			}
			if got != tc.want {
				t.Fatalf("parseNotice(%q) = %+v, want %+v", tc.payload, got, tc.want)
			}
		})
	}
}

// TestNoticeRoundTrip: what the writers send is what the listener reads.
func TestNoticeRoundTrip(t *testing.T) {
	if ev, err := parseNotice(revisionNotice(7)); err != nil || ev != (store.PolicyEvent{Revision: 7}) {
		t.Fatalf("revision notice read back as %+v, %v", ev, err)
	}
	if ev, err := parseNotice(accessKeyNotice(testJTI)); err != nil || ev != (store.PolicyEvent{AccessKey: testJTI}) {
		t.Fatalf("access-key notice read back as %+v, %v", ev, err)
	}
}

// FuzzParseNotice: any payload (the channel is shared by everything that
// can connect to the database) either fails or yields exactly one of a
// positive revision and a valid jti, never a Resync or an Err, and an
// access-key event's payload is exactly the notice the writers send.
func FuzzParseNotice(f *testing.F) {
	for _, s := range []string{"1", "42", "0", "-1", "+5", "007", "ak:" + testJTI, "ak:", "ak:ak_", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		ev, err := parseNotice(payload)
		if err != nil {
			if ev != (store.PolicyEvent{}) {
				t.Fatalf("error with an event: %+v", ev)
			}
			return
		}
		if ev.Resync || ev.Err != nil {
			t.Fatalf("a notice must not carry Resync or Err: %+v", ev)
		}
		switch {
		case ev.AccessKey != "" && ev.Revision == 0:
			if !store.ValidJTI(ev.AccessKey) || accessKeyNotice(ev.AccessKey) != payload {
				t.Fatalf("access key %q from payload %q", ev.AccessKey, payload)
			}
		case ev.AccessKey == "" && ev.Revision > 0:
			if strings.HasPrefix(payload, accessKeyPrefix) {
				t.Fatalf("revision %d from an access-key payload %q", ev.Revision, payload)
			}
			if n, perr := strconv.ParseInt(payload, 10, 64); perr != nil || n != ev.Revision {
				t.Fatalf("revision %d from payload %q", ev.Revision, payload)
			}
		default:
			t.Fatalf("payload %q gave %+v: want exactly one of a revision and a key", payload, ev)
		}
	})
}

// TestChannelPerSchema: the schema "public" keeps the channel nmp_policy
// (replicas of an earlier version listen there); any other schema gets a
// channel of its own, a valid identifier of at most 63 bytes.
func TestChannelPerSchema(t *testing.T) {
	base := os.Getenv("NMP_TEST_POSTGRES_URL")
	if base == "" {
		testenv.Missing(t, "PostgreSQL", "NMP_TEST_POSTGRES_URL is not set")
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Close(t, db)
	ctx := context.Background()
	seen := map[string]string{}
	for _, schema := range []string{"public", "nmp_a", "nmp_b", "Ünïcode schema", strings.Repeat("s", 63)} {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var channel string
		// current_schema() is the first schema of the search_path that
		// exists: create it in a transaction that is rolled back.
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if schema != "public" {
			if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRowContext(ctx, "SELECT "+channelSQL).Scan(&channel); err != nil {
			t.Fatal(err)
		}
		_ = tx.Rollback()
		testenv.Close(t, conn)
		switch {
		case schema == "public" && channel != PolicyChannel:
			t.Errorf("public: channel %q, want %q", channel, PolicyChannel)
		case schema != "public" && (!strings.HasPrefix(channel, PolicyChannel+"_") || len(channel) != len(PolicyChannel)+17):
			t.Errorf("%q: channel %q", schema, channel)
		}
		if other, dup := seen[channel]; dup {
			t.Errorf("schemas %q and %q share channel %q", schema, other, channel)
		}
		seen[channel] = schema
	}
}
