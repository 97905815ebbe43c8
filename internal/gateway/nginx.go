// Package gateway holds the gateway integrations the platform documents
// and tests: an nginx auth_request configuration in front of nmp (here),
// and Caddy forward_auth, whose Caddyfile lives in docs/gateway.md and is
// run from there by the tests.
package gateway

import (
	"bytes"
	"text/template"
)

// NginxConfig renders an nginx configuration that puts nginx in front of
// an nmp server (docs/gateway.md): every request is first sent to the
// authenticate callout; identity headers from clients are stripped and
// replaced by the callout's; the server must list nginx's address in
// auth.trusted_proxies.
type NginxConfig struct {
	// Prefix is nginx's working directory (pid file, logs, temp files).
	Prefix string
	// Listen is nginx's listen address (host:port).
	Listen string
	// Upstream is the nmp server address (host:port).
	Upstream string
}

var nginxTemplate = template.Must(template.New("nginx").Parse(`daemon off;
master_process off;
worker_processes 1;
pid {{.Prefix}}/nginx.pid;
error_log {{.Prefix}}/error.log warn;
events { worker_connections 64; }
http {
    access_log {{.Prefix}}/access.log;
    client_body_temp_path {{.Prefix}}/client_body;
    proxy_temp_path {{.Prefix}}/proxy;
    fastcgi_temp_path {{.Prefix}}/fastcgi;
    uwsgi_temp_path {{.Prefix}}/uwsgi;
    scgi_temp_path {{.Prefix}}/scgi;
    upstream nmp { server {{.Upstream}}; }
    server {
        listen {{.Listen}};
        # Bypass paths go straight to nmp, neither to the callout nor the PDP.
        location ~ ^/(health/live|health/ready|status|cluster-info|metrics|apis/auth/discovery|apis/auth/jwks)$ {
            {{template "strip"}}
            proxy_pass http://nmp;
        }
        location / {
            auth_request /_nmp_auth;
            auth_request_set $nmp_id $upstream_http_x_nmp_principal_id;
            auth_request_set $nmp_email $upstream_http_x_nmp_principal_email;
            auth_request_set $nmp_groups $upstream_http_x_nmp_principal_groups;
            auth_request_set $nmp_scopes $upstream_http_x_nmp_scopes;
            auth_request_set $nmp_authorized $upstream_http_x_nmp_authorized;
            {{template "strip"}}
            proxy_set_header X-NMP-Principal-Id $nmp_id;
            proxy_set_header X-NMP-Principal-Email $nmp_email;
            proxy_set_header X-NMP-Principal-Groups $nmp_groups;
            proxy_set_header X-NMP-Scopes $nmp_scopes;
            proxy_set_header X-NMP-Authorized $nmp_authorized;
            proxy_pass http://nmp;
        }
        location = /_nmp_auth {
            internal;
            proxy_pass http://nmp/apis/auth/authenticate;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            {{template "strip"}}
        }
    }
}
{{define "strip"}}# Identity headers never pass from clients.
            proxy_set_header X-NMP-Principal-Id "";
            proxy_set_header X-NMP-Principal-Email "";
            proxy_set_header X-NMP-Principal-Groups "";
            proxy_set_header X-NMP-Principal-On-Behalf-Of "";
            proxy_set_header X-NMP-Principal-On-Behalf-Of-Email "";
            proxy_set_header X-NMP-Principal-On-Behalf-Of-Groups "";
            proxy_set_header X-NMP-Scopes "";
            proxy_set_header X-NMP-Authorized "";{{end}}
`))

// Render returns the configuration text.
func (c NginxConfig) Render() (string, error) {
	var b bytes.Buffer
	err := nginxTemplate.Execute(&b, c)
	return b.String(), err
}
