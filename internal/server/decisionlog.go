package server

import (
	"io"
	"log/slog"
	"os"

	"github.com/nmp-project/nmp/internal/accesslog"
	"github.com/nmp-project/nmp/internal/authz"
	"github.com/nmp-project/nmp/internal/config"
	"github.com/nmp-project/nmp/internal/decisionlog"
)

// newDecisionLog opens auth.decision_log.output and builds the decision
// log (nil when auth.decision_log.enabled is false). An output that
// cannot be opened stops the server at start.
func (s *Server) newDecisionLog(cfg *config.Config, catalog *authz.Catalog, log *slog.Logger) (*decisionlog.Logger, error) {
	dl := cfg.Auth.DecisionLog
	if !dl.Enabled {
		return nil, nil
	}
	out, err := decisionlog.Open(dl.Output)
	if err != nil {
		return nil, err
	}
	if c, ok := out.(io.Closer); ok && dl.Output != "stderr" {
		s.decisionOutput = c
	}
	log.Info("decision log enabled", "output", dl.Output, "allow_sample_rate", dl.AllowSampleRate, "buffer_size", dl.BufferSize)
	return decisionlog.New(decisionlog.Options{Output: out, AllowSampleRate: dl.AllowSampleRate, BufferSize: dl.BufferSize,
		Provider: cfg.Auth.PolicyDecisionPointProvider, Revision: s.decisionRevision, Workspace: catalog.PathWorkspace,
		Clock: s.clock, Registerer: s.metrics.Registry(), Log: log}), nil
}

// decisionRevision is the policy revision decisions are made at: the
// engine's, or with an external OPA the revision of the bundle OPA had
// activated at its last readiness check (the engine's until one is known).
func (s *Server) decisionRevision() int64 {
	if s.opa != nil {
		if r := s.opa.Remote(); r.HasRevision {
			return r.Revision
		}
	}
	return s.engine.Revision()
}

// newAccessLog builds the access log from service.access_log: lines go to
// stderr (or WithAccessLogOutput) in service.log_format, filtered by service.log_level like every
// other line (nil when off or not shown).
func (s *Server) newAccessLog(cfg *config.Config, log *slog.Logger) *accesslog.Logger {
	al := cfg.Service.AccessLog
	level, off, err := accesslog.ParseLevel(al.Level)
	if err != nil { // validated at load
		level = slog.LevelInfo
	}
	var out io.Writer = os.Stderr
	if s.accessLogOutput != nil {
		out = s.accessLogOutput
	}
	return accesslog.New(accesslog.Options{Output: out, Off: off, Level: level, SampleRate: al.SampleRate,
		BufferSize: al.BufferSize, Registerer: s.metrics.Registry(), Log: log, Format: cfg.Service.LogFormat,
		Handler: func(w io.Writer) slog.Handler { // NewLogger: slog's handler for Format, with a level only
			return NewLogger(w, cfg.Service.LogLevel, cfg.Service.LogFormat).Handler()
		}})
}
