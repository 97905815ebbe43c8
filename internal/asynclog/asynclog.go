// Package asynclog is the shared core of the logs written off the request
// path (the decision log, the access log): a bounded queue that never
// blocks the caller, a background writer that formats the queued values
// through a log/slog handler into a batch buffer and flushes the batch
// every flush interval, and the counters of what was written, dropped and
// lost.
package asynclog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure New.
type Options[T any] struct {
	// Name is the log's name in messages and errors ("decision log").
	Name string
	// Output receives the lines; it is closed when Run returns if it is
	// an io.Closer other than os.Stderr and os.Stdout.
	Output io.Writer
	// Handler builds the handler that formats records into the batch
	// buffer (nil: slog's JSON handler).
	Handler func(io.Writer) slog.Handler
	// BufferSize bounds the values waiting to be written (≤ 0: 10000).
	BufferSize int
	// FlushInterval is how often the writer wakes up to write what is
	// queued (≤ 0: DefaultFlushInterval).
	FlushInterval time.Duration
	// Record turns a queued value into a log record; called by the
	// writer, never on the request path.
	Record func(T) slog.Record
	// Append, when set, appends a value's whole line (newline included)
	// exactly as Handler would format Record's record, or reports false
	// for the writer to use Handler: a faster path for common values.
	Append func(b []byte, v T) ([]byte, bool)
	// Written, Dropped and Failed count the values written, dropped
	// because the queue was full, and lost to a failing output (nil: not
	// counted).
	Written, Dropped, Failed prometheus.Counter
	// Log receives write failures (nil: discarded); never a value.
	Log *slog.Logger
}

// DefaultBufferSize is the queue's size when Options.BufferSize is ≤ 0.
const DefaultBufferSize = 10000

// DefaultFlushInterval is the writer's period when Options.FlushInterval
// is ≤ 0. The writer wakes up on a clock rather than for every value: a
// request then only copies its value into the queue (no goroutine to wake,
// no system call), and the writer formats and writes everything queued in
// one batch; a line reaches the output at most this much later.
const DefaultFlushInterval = 20 * time.Millisecond

// batchSize is the batch buffer's size: a flush writes at most this much
// (or one longer line) in one Write.
const batchSize = 64 << 10

// Queue is a bounded queue of values and their writer.
type Queue[T any] struct {
	o      Options[T]
	values chan T
	batch  *batch
	h      slog.Handler
	closer io.Closer
	// Used by the writer goroutine only: writes are failing; values in
	// the batch not yet flushed.
	broken    bool
	unflushed int
	line      []byte // Append's buffer
}

// New returns a queue that writes once Run runs.
func New[T any](o Options[T]) *Queue[T] {
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.Handler == nil {
		o.Handler = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }
	}
	for _, c := range []*prometheus.Counter{&o.Written, &o.Dropped, &o.Failed} {
		if *c == nil {
			*c = prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered", Help: "unregistered"})
		}
	}
	q := &Queue[T]{o: o, values: make(chan T, o.BufferSize), batch: &batch{w: o.Output, buf: make([]byte, 0, batchSize)}}
	q.h = o.Handler(q.batch)
	if c, ok := o.Output.(io.Closer); ok && o.Output != os.Stderr && o.Output != os.Stdout {
		q.closer = c
	}
	return q
}

// Put queues v without ever waiting: when the queue is full v is dropped
// and counted, and Put reports false.
func (q *Queue[T]) Put(v T) bool {
	select {
	case q.values <- v:
		return true
	default:
		q.o.Dropped.Inc()
		return false
	}
}

// Run writes what is queued every flush interval until ctx ends, then
// writes what is still queued, flushes and closes the output (a file;
// never stderr).
func (q *Queue[T]) Run(ctx context.Context) error {
	tick := time.NewTicker(q.o.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			q.drain()
			if q.unflushed > 0 {
				_ = q.flush() // counted and logged; the next flush tries again
			}
		case <-ctx.Done():
			return q.stop()
		}
	}
}

// drain writes the values queued now into the batch (which flushes itself
// when full), leaving later ones for the next tick.
func (q *Queue[T]) drain() {
	for n := len(q.values); n > 0; n-- {
		q.write(<-q.values)
	}
}

// stop drains the queue, flushes and closes the output.
func (q *Queue[T]) stop() error {
	for {
		select {
		case v := <-q.values:
			q.write(v)
			continue
		default:
		}
		break
	}
	err := q.flush()
	if q.closer != nil {
		err = errors.Join(err, q.closer.Close())
	}
	if err != nil {
		return fmt.Errorf("%s: %w", q.o.Name, err)
	}
	return nil
}

// write formats one value into the batch.
func (q *Queue[T]) write(v T) {
	if q.o.Append != nil {
		if line, ok := q.o.Append(q.line[:0], v); ok {
			q.line = line
			_, _ = q.batch.Write(line) // never fails: a failed flush is kept for the next one
			q.unflushed++
			return
		}
	}
	if err := q.h.Handle(context.Background(), q.o.Record(v)); err != nil {
		q.lost(q.unflushed+1, err)
		return
	}
	q.unflushed++
}

// flush writes the batch to the output.
func (q *Queue[T]) flush() error {
	err := q.batch.flush()
	n := q.unflushed
	q.unflushed = 0
	if err != nil {
		q.lost(n, err)
		return err
	}
	q.o.Written.Add(float64(n))
	if q.broken {
		q.broken = false
		q.o.Log.Info("writing the " + q.o.Name + " works again")
	}
	return nil
}

// lost counts n values that could not be written, forgets the batch and
// logs the first failure of a run of failures (not one line per value).
func (q *Queue[T]) lost(n int, err error) {
	q.o.Failed.Add(float64(n))
	q.batch.buf = q.batch.buf[:0]
	q.batch.err = nil
	q.unflushed = 0
	if !q.broken {
		q.broken = true
		q.o.Log.Error("writing the "+q.o.Name+" failed; entries are lost until it works again", "error", err)
	}
}

// batch collects whole lines: a line never straddles two writes to the
// output, so lines written to a shared stderr by other loggers between
// two flushes cannot split one.
type batch struct {
	w   io.Writer
	buf []byte
	err error // the first failed write since the last flush
}

// Write appends one formatted record, first flushing the batch when the
// record does not fit in it.
func (b *batch) Write(p []byte) (int, error) {
	if len(b.buf) > 0 && len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flush(); err != nil {
			b.err = err
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *batch) flush() error {
	err := b.err
	b.err = nil
	if len(b.buf) > 0 {
		_, werr := b.w.Write(b.buf)
		err = errors.Join(err, werr)
		if cap(b.buf) > batchSize { // one long line grew it
			b.buf = make([]byte, 0, batchSize)
		}
		b.buf = b.buf[:0]
	}
	return err
}

// Sampler keeps a share of events, safe for concurrent use.
type Sampler struct {
	rate float64
	mu   sync.Mutex
	rand *mrand.Rand // nil: math/rand/v2's global source
}

// NewSampler keeps each event with probability rate (≤ 0: none, ≥ 1:
// all), drawing from src (nil: math/rand/v2's global source).
func NewSampler(rate float64, src mrand.Source) *Sampler {
	s := &Sampler{rate: rate}
	if src != nil {
		s.rand = mrand.New(src)
	}
	return s
}

// Keep reports whether the next event is kept.
func (s *Sampler) Keep() bool {
	switch rate := s.rate; {
	case rate >= 1:
		return true
	case rate <= 0:
		return false
	case s.rand == nil:
		return mrand.Float64() < rate
	default:
		s.mu.Lock()
		f := s.rand.Float64()
		s.mu.Unlock()
		return f < rate
	}
}
