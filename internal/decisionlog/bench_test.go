package decisionlog_test

import (
	"context"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nmp-project/nmp/internal/decisionlog"
)

// BenchmarkRecord is the cost of Record on the request path for an allow
// decision: at sample rate 0 it is dropped by sampling; at rate 1 it is
// put into the buffer, which the writer drains to io.Discard concurrently
// (entries the writer cannot keep up with are dropped and reported).
func BenchmarkRecord(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate float64
	}{{"rate=0", 0}, {"rate=1", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			l := decisionlog.New(decisionlog.Options{Output: io.Discard, AllowSampleRate: bc.rate, Provider: "embedded",
				Revision: func() int64 { return 7 }, Registerer: reg})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			e := entry(true, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				l.Record(e)
			}
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(metricValue(b, reg, "nmp_decision_log_dropped_total"))/float64(b.N), "dropped/op")
		})
	}
}

// BenchmarkRecordKept is Record of a kept entry while the buffer has
// room (the writer not running; a fresh logger every 10,000 entries,
// outside the timing): the cost on the request path of a decision that
// is logged.
func BenchmarkRecordKept(b *testing.B) {
	const chunk = 10000
	e := entry(false, 0)
	var l *decisionlog.Logger
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%chunk == 0 {
			b.StopTimer()
			l = decisionlog.New(decisionlog.Options{Output: io.Discard, BufferSize: chunk, Revision: func() int64 { return 7 }})
			b.StartTimer()
		}
		l.Record(e)
	}
}

// BenchmarkWrite is the writer's cost per entry (JSON line with a new
// decision id, to io.Discard): how many decisions per second one core
// can log before the buffer fills and entries are dropped.
func BenchmarkWrite(b *testing.B) {
	l := decisionlog.New(decisionlog.Options{Output: io.Discard, BufferSize: b.N + 1, Provider: "embedded",
		Revision: func() int64 { return 7 }})
	e := entry(false, 0)
	for range b.N {
		l.Record(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run writes everything buffered and returns
	b.ReportAllocs()
	b.ResetTimer()
	if err := l.Run(ctx); err != nil {
		b.Fatal(err)
	}
}

func metricValue(b *testing.B, reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
