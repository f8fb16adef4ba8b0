package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// historyLen is how many one-second samples the status page keeps.
const historyLen = 60

// rateWindow is how many seconds the requests-per-second figure averages.
const rateWindow = 5

// sampler reads the request totals once a second, so that the status
// page can show requests per second and their recent history.
type sampler struct {
	requests *Requests
	mu       sync.Mutex // guards samples: written by run, read by the HTTP handlers
	samples  []sample   // oldest first, at most historyLen+1
}

// sample is the request totals at one time.
type sample struct {
	at     time.Time
	totals Totals
}

func newSampler(q *Requests, now time.Time) *sampler {
	s := &sampler{requests: q}
	s.take(now)
	return s
}

// run takes a sample every interval until ctx ends.
func (s *sampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.take(now)
		}
	}
}

// take records the totals now.
func (s *sampler) take(now time.Time) {
	x := sample{at: now, totals: s.requests.totals()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, x)
	if len(s.samples) > historyLen+1 {
		s.samples = append(s.samples[:0], s.samples[len(s.samples)-historyLen-1:]...)
	}
}

// rates returns the requests per second of each protocol over the last
// rateWindow seconds, and the history of the total rate, one a second,
// oldest first.
func (s *sampler) rates() (current map[string]float64, history []Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	current = map[string]float64{}
	for _, p := range protoLabels {
		current[p] = 0
	}
	n := len(s.samples)
	if n < 2 {
		return current, []Point{}
	}
	last, first := s.samples[n-1], s.samples[max(0, n-1-rateWindow)]
	for i, p := range protoLabels {
		current[p] = rate(first, last, i)
	}
	history = make([]Point, 0, n-1)
	for i := 1; i < n; i++ {
		total := 0.0
		for p := range protoLabels {
			total += rate(s.samples[i-1], s.samples[i], p)
		}
		history = append(history, Point{Time: s.samples[i].at.Unix(), RPS: total})
	}
	return current, history
}

// rate is the requests per second of protocol p between two samples; 0
// when the totals went down (a reload removed a route).
func rate(from, to sample, p int) float64 {
	dt := to.at.Sub(from.at).Seconds()
	if dt <= 0 || to.totals[p] < from.totals[p] {
		return 0
	}
	return float64(to.totals[p]-from.totals[p]) / dt
}

// Point is one second of the request-rate history.
type Point struct {
	Time int64   `json:"time"` // unix seconds
	RPS  float64 `json:"rps"`
}

// Status is what /status.json answers and the status page shows.
type Status struct {
	Time              time.Time          `json:"time"`
	RequestsPerSecond float64            `json:"requests_per_second"`
	RateByProto       map[string]float64 `json:"rate_by_proto"` // requests per second, over the last few seconds
	RequestsByProto   map[string]uint64  `json:"requests_by_proto"`
	History           []Point            `json:"history"`
	Routes            []RouteStatus      `json:"routes"`
	Connections       []Connections      `json:"connections"`
	Handshakes        *Handshakes        `json:"handshakes,omitempty"`
	Certificates      []CertStatus       `json:"certificates"`
	Upstreams         []Upstream         `json:"upstreams"`
}

// RouteStatus is one route's request count by status class.
type RouteStatus struct {
	Site     string            `json:"site"`
	Route    string            `json:"route"`
	Requests uint64            `json:"requests"`
	ByClass  map[string]uint64 `json:"by_class"`
}

// CertStatus is a certificate as the status page shows it.
type CertStatus struct {
	Certificate
	ExpiresIn float64 `json:"expires_in_seconds"` // 0 when none is held
}

// status gathers the status now.
func (s *Server) status(now time.Time) Status {
	st := Status{Time: now, RequestsByProto: map[string]uint64{}, Routes: []RouteStatus{},
		Connections: []Connections{}, Certificates: []CertStatus{}, Upstreams: []Upstream{}}
	st.RateByProto, st.History = s.sampler.rates()
	for _, r := range st.RateByProto {
		st.RequestsPerSecond += r
	}
	totals := s.Requests.totals()
	for i, p := range protoLabels {
		st.RequestsByProto[p] = totals[i]
	}
	st.Routes = append(st.Routes, s.Requests.routeStatus()...)
	src := s.Sources
	if src.Connections != nil {
		st.Connections = append(st.Connections, src.Connections()...)
	}
	if src.Handshakes != nil {
		h := src.Handshakes()
		st.Handshakes = &h
	}
	if src.Certificates != nil {
		for _, c := range src.Certificates() {
			cs := CertStatus{Certificate: c}
			if !c.NotAfter.IsZero() {
				cs.ExpiresIn = c.NotAfter.Sub(now).Seconds()
			}
			st.Certificates = append(st.Certificates, cs)
		}
	}
	if src.Upstreams != nil {
		st.Upstreams = append(st.Upstreams, src.Upstreams()...)
	}
	return st
}

// routeStatus lists every route's requests by status class.
func (q *Requests) routeStatus() []RouteStatus {
	var out []RouteStatus
	for _, s := range q.routes() {
		rs := RouteStatus{Site: s.site, Route: s.route, ByClass: map[string]uint64{}}
		for i := range s.protos {
			for c := range s.protos[i].requests {
				n := s.protos[i].requests[c].Load()
				rs.Requests += n
				if n > 0 {
					rs.ByClass[classLabels[c]] += n
				}
			}
		}
		out = append(out, rs)
	}
	return out
}

// serveStatus answers /status.json.
func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.status(time.Now()))
}
