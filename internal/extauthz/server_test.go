package extauthz_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/authz/authztest"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/server"
	"github.com/nmp-project/nmp/internal/server/servertest"
	"github.com/nmp-project/nmp/internal/store"
	"github.com/nmp-project/nmp/internal/testenv/opatest"
	"github.com/nmp-project/nmp/internal/tlsconfig/tlstest"
)

// TestServedByThePlatform: with auth.ext_authz.grpc_address set, the
// platform process serves Check and health next to its HTTP API, with the
// seeded bindings ("*" is Editor in default), counts the checks on
// /metrics, and stops cleanly with the rest (servertest fails the test if
// Serve returns an error).
func TestServedByThePlatform(t *testing.T) {
	gln := servertest.Listen(t)
	srv := servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
		c.Auth.ExtAuthz.GRPCAddress = gln.Addr().String()
	}, server.WithExtAuthzListener(gln))
	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	hr, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hr, err)
	}
	headers := map[string]string{"authorization": "Bearer " + unsignedToken(t, "carol", "", nil, nil)}
	resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(),
		checkRequest("POST", "/apis/entities/v2/workspaces/default/projects", headers))
	if err != nil {
		t.Fatal(err)
	}
	if got := grpcAnswer(t, resp); got.status != http.StatusOK || got.identity["x-nmp-principal-id"] != "carol" {
		t.Fatalf("got %+v", got)
	}
	// dynamic_metadata names the decision for Envoy's access log.
	md := resp.GetDynamicMetadata().GetFields()
	if md["principal_id"].GetStringValue() != "carol" || md["reason"].GetStringValue() != "permission_granted" ||
		md["decision_id"].GetStringValue() == "" {
		t.Fatalf("dynamic metadata %v", md)
	}
	mresp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(mresp.Body)
	_ = mresp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `nmp_ext_authz_checks_total{result="allowed"} 1`) {
		t.Fatalf("/metrics does not count the check")
	}
}

// TestServedWithTheServersTLS: with service.tls set (and a client CA),
// the ext_authz listener serves the same certificate under mutual TLS as
// HTTPS does: a client with a certificate from that CA is served, one
// without a certificate is refused at the handshake.
func TestServedWithTheServersTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := ca.Server(t, "nmp").Write(t, dir)
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.CertPEM)
	gln := servertest.Listen(t)
	servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
		c.Auth.ExtAuthz.GRPCAddress = gln.Addr().String()
		c.Service.TLS = config.TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}
	}, server.WithExtAuthzListener(gln))

	health := func(certs []tls.Certificate) error {
		creds := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12})
		conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"})
		if err == nil && hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("status %v", hr.GetStatus())
		}
		return err
	}
	if err := health([]tls.Certificate{ca.Client(t, "envoy").TLS(t)}); err != nil {
		t.Fatalf("client with a certificate from the client CA: %v", err)
	}
	if err := health(nil); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

// TestExternalOPAStopped: with provider opa, Check asks the real OPA; a
// killed OPA makes the next Check UNAVAILABLE with 503 pdp_unavailable,
// never OK, and a restarted one is asked again.
func TestExternalOPAStopped(t *testing.T) {
	o := opatest.StartPolicy(t, opatest.Policy{Data: seededData(t)})
	gln := servertest.Listen(t)
	servertest.Start(t, func(c *config.Config) {
		c.Auth.Enabled = true
		c.Auth.AllowUnsignedJWT = true
		c.Auth.ExtAuthz.GRPCAddress = gln.Addr().String()
		c.Auth.PolicyDecisionPointProvider = "opa"
		c.Auth.PolicyDecisionPointBaseURL = o.URL
		c.Auth.PolicyDecisionPointRequestTimeoutSeconds = 1
	}, server.WithExtAuthzListener(gln))
	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	check := func() *authv3.CheckResponse {
		t.Helper()
		headers := map[string]string{"authorization": "Bearer " + unsignedToken(t, "carol", "", nil, nil)}
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(),
			checkRequest("POST", "/apis/entities/v2/workspaces/default/projects", headers))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := check(); resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("OPA up: %v", resp)
	}
	o.Kill()
	resp := check()
	if resp.GetStatus().GetCode() != int32(codes.Unavailable) || resp.GetDeniedResponse().GetStatus().GetCode() != 503 ||
		!strings.Contains(resp.GetDeniedResponse().GetBody(), "pdp_unavailable") {
		t.Fatalf("OPA down: %v", resp)
	}
	o.Restart()
	if resp := check(); resp.GetStatus().GetCode() != int32(codes.OK) {
		t.Fatalf("OPA back: %v", resp)
	}
}

// seededData is data.authz with the seed bindings ("*" is Editor in
// default), as the server would load them.
func seededData(t *testing.T) map[string]any {
	e := authztest.StaticEngine(t)
	seed := authz.Seed("", "default")
	var bs []store.RoleBinding
	for i, b := range seed.Bindings {
		bs = append(bs, store.RoleBinding{ID: fmt.Sprint(i), Principal: b.Principal, Workspace: b.Workspace, Role: b.Role, Revision: 1})
	}
	if err := e.Load(store.PolicyBindings{Revision: 1, Bindings: bs}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return e.DataDocument()
}
