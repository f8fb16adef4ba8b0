// Package admin is anx's admin listener: Prometheus metrics at /metrics,
// a live status page at / and its data at /status.json. Requests counts
// the requests as a message.Observer, without a lock or an allocation on
// the event loops; everything else is read from the gateway's packages
// (Sources) when asked. It serves with net/http: it is not the hot path.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves the admin endpoints on its own listener.
//
// Goroutines: Start starts the HTTP server's (net/http's, one per
// connection) and the sampler's, which reads the request totals once a
// second for the status page; Shutdown ends both.
type Server struct {
	// Requests are the request counters; required.
	Requests *Requests
	// Sources give the other figures.
	Sources Sources
	// Logger receives the HTTP server's errors; nil means slog.Default().
	Logger *slog.Logger

	ln      net.Listener
	http    *http.Server
	sampler *sampler
	stop    context.CancelFunc
	done    chan struct{} // closed when the sampler's goroutine has exited
}

// Listen opens the admin listener on addr. The socket shares its port
// (SO_REUSEPORT, where there is one) so that the new process of a binary
// upgrade can open it while the old one still serves it.
func (s *Server) Listen(addr string) error {
	lc := net.ListenConfig{Control: reusePort}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr is the listener's address, once Listen has opened it.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Start serves on the listener Listen opened.
func (s *Server) Start() error {
	if s.Requests == nil || s.ln == nil {
		return errors.New("admin: Start needs Requests and a listener")
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(&collector{requests: s.Requests, sources: s.Sources, now: time.Now}); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.sampler = newSampler(s.Requests, time.Now())
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /status.json", s.serveStatus)
	mux.HandleFunc("GET /{$}", servePage)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelDebug),
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go func() { // exits when Shutdown cancels ctx
		defer close(s.done)
		s.sampler.run(ctx, time.Second)
	}()
	go func() { // exits when Shutdown closes the server
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger().Error("admin: serving stopped", "error", err.Error())
		}
	}()
	return nil
}

// Shutdown stops the listener, waits for the requests being served
// within ctx, and stops the sampler.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		if s.ln != nil {
			return s.ln.Close()
		}
		return nil
	}
	err := s.http.Shutdown(ctx)
	s.stop()
	<-s.done
	return err
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
