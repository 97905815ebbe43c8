//go:build envoyconfig

// Built only with -tags envoyconfig (.ci/run runs it): Envoy's bootstrap
// types are large to compile with -race, and the test only checks docs.

package extauthz_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3" // the router filter's type
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/nmp-project/nmp/internal/authn"
)

// TestDocumentedEnvoyConfig loads the Envoy bootstrap of docs/envoy.md
// into Envoy's own configuration types (YAML → JSON → protojson, unknown
// fields refused, the typed configs resolved through the filter types
// registered by the imports above) and checks what the page promises: a
// gRPC ext_authz filter on a defined HTTP/2 cluster with
// failure_mode_allow false, a timeout, transport API V3 and 503 on error,
// preceded by a filter that strips all eight identity headers, with the
// router last, and no route-level removal of the identity headers.
func TestDocumentedEnvoyConfig(t *testing.T) {
	doc, err := os.ReadFile("../../docs/envoy.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) != 1 {
		t.Fatalf("docs/envoy.md has %d yaml blocks, want the one bootstrap", len(blocks))
	}
	var tree any
	if err := yaml.Unmarshal(blocks[0][1], &tree); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	js, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	var boot bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &boot); err != nil {
		t.Fatalf("not an Envoy bootstrap: %v", err)
	}
	if err := boot.ValidateAll(); err != nil {
		t.Fatalf("Envoy's validation rules: %v", err)
	}

	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range boot.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	listeners := boot.GetStaticResources().GetListeners()
	if len(listeners) != 1 || len(listeners[0].GetFilterChains()) != 1 || len(listeners[0].GetFilterChains()[0].GetFilters()) != 1 {
		t.Fatalf("want one listener with one filter chain and one network filter")
	}
	var hcm hcmv3.HttpConnectionManager
	if err := listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatalf("http_connection_manager: %v", err)
	}
	identity := make([]string, 0, len(authn.IdentityHeaders))
	for _, h := range authn.IdentityHeaders {
		identity = append(identity, strings.ToLower(h))
	}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if c := r.GetRoute().GetCluster(); clusters[c] == nil {
				t.Errorf("route to undefined cluster %q", c)
			}
		}
	}
	for _, name := range hcm.GetRouteConfig().GetRequestHeadersToRemove() {
		if slices.Contains(identity, strings.ToLower(name)) {
			t.Errorf("route_config removes %s after ext_authz set it", name)
		}
	}

	filters := hcm.GetHttpFilters()
	var names []string
	for _, f := range filters {
		names = append(names, f.GetName())
	}
	want := []string{"envoy.filters.http.header_mutation", "envoy.filters.http.ext_authz", "envoy.filters.http.router"}
	if !slices.Equal(names, want) {
		t.Fatalf("http filters %v, want %v", names, want)
	}
	var strip headermutationv3.HeaderMutation
	if err := filters[0].GetTypedConfig().UnmarshalTo(&strip); err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, m := range strip.GetMutations().GetRequestMutations() {
		removed = append(removed, m.GetRemove())
	}
	slices.Sort(removed)
	slices.Sort(identity)
	if !slices.Equal(removed, identity) {
		t.Errorf("header_mutation removes %v, want the identity headers %v", removed, identity)
	}

	var ea extauthzv3.ExtAuthz
	if err := filters[1].GetTypedConfig().UnmarshalTo(&ea); err != nil {
		t.Fatal(err)
	}
	switch {
	case ea.GetFailureModeAllow():
		t.Error("failure_mode_allow must be false")
	case ea.GetTransportApiVersion() != corev3.ApiVersion_V3:
		t.Errorf("transport_api_version %v", ea.GetTransportApiVersion())
	case ea.GetStatusOnError().GetCode() != typev3.StatusCode_ServiceUnavailable:
		t.Errorf("status_on_error %v, want 503", ea.GetStatusOnError())
	case ea.GetGrpcService().GetTimeout().AsDuration() <= 0 || ea.GetGrpcService().GetTimeout().AsDuration() > 10*time.Second:
		t.Errorf("grpc_service.timeout %v", ea.GetGrpcService().GetTimeout())
	}
	authzCluster := clusters[ea.GetGrpcService().GetEnvoyGrpc().GetClusterName()]
	if authzCluster == nil {
		t.Fatalf("ext_authz cluster %q is not defined", ea.GetGrpcService().GetEnvoyGrpc().GetClusterName())
	}
	var po upstreamhttpv3.HttpProtocolOptions
	if err := authzCluster.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po); err != nil ||
		po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("the ext_authz cluster does not speak HTTP/2: %v", err)
	}
	if hc := authzCluster.GetHealthChecks(); len(hc) != 1 || hc[0].GetGrpcHealthCheck().GetServiceName() != "envoy.service.auth.v3.Authorization" {
		t.Errorf("the ext_authz cluster's health check is not the gRPC one of the Authorization service")
	}
}
