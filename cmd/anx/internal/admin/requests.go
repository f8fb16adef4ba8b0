package admin

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// Requests counts the requests of every route by protocol and status
// class, with their bytes and a latency histogram: it is the
// message.Observer of the metrics. Observe takes no lock and allocates
// nothing: it finds the route's counters by the RouteInfo pointer in an
// immutable map (published whole by SetRoutes) and adds to atomics; the
// collector reads them at scrape time.
type Requests struct {
	table atomic.Pointer[routeTable]
	// unrouted counts requests that no route took (421, an answer of the
	// front end itself), and those of a route removed by a reload that
	// ended after it.
	unrouted *routeStats
	// upstreams holds an upstream's response-time histogram by address
	// (string → *histogram): made the first time the address is seen,
	// read without a lock after.
	upstreams sync.Map
	// mu serializes SetRoutes (reloads), which run on the main goroutine;
	// Observe never takes it.
	mu sync.Mutex
}

// NewRequests returns the counters, with no route yet.
func NewRequests() *Requests {
	q := &Requests{unrouted: &routeStats{site: unroutedLabel, route: unroutedLabel}}
	q.table.Store(&routeTable{byInfo: map[*message.RouteInfo]*routeStats{}, byName: map[routeName]*routeStats{}})
	return q
}

// Labels of the requests that no route took, and of a site's own files.
const (
	unroutedLabel = "(none)"
	rootLabel     = "(root)"
)

// routeTable finds a route's counters. It is never changed once
// published: SetRoutes publishes a new one.
type routeTable struct {
	byInfo  map[*message.RouteInfo]*routeStats
	byName  map[routeName]*routeStats // the same counters, by site and path
	current []*message.RouteInfo      // the routes of the last SetRoutes, in config order
	ordered []*routeStats             // the counters of current, in the same order
}

// routeName is a route as the config names it.
type routeName struct{ site, path string }

// SetRoutes makes routes (a config's, after a load or a reload) the
// routes counted. A route that the running config had too (the same site
// and path) keeps its counters, so its totals go on; a removed one's
// series leave the metrics. The previous config's RouteInfos still find
// their counters, so that requests in flight across a reload count.
func (q *Requests) SetRoutes(routes []*message.RouteInfo) {
	q.mu.Lock()
	defer q.mu.Unlock()
	old := q.table.Load()
	t := &routeTable{
		byInfo:  make(map[*message.RouteInfo]*routeStats, 2*len(routes)),
		byName:  make(map[routeName]*routeStats, len(routes)),
		current: routes,
	}
	for _, info := range routes {
		name := routeName{info.Site, info.Path}
		s := t.byName[name]
		if s == nil {
			s = old.byName[name]
		}
		if s == nil {
			s = &routeStats{site: info.Site, route: routeLabel(info.Path)}
		}
		if _, seen := t.byName[name]; !seen {
			t.ordered = append(t.ordered, s)
		}
		t.byName[name] = s
		t.byInfo[info] = s
	}
	for _, info := range old.current {
		if s := t.byName[routeName{info.Site, info.Path}]; s != nil {
			t.byInfo[info] = s
		}
	}
	q.table.Store(t)
}

// routeLabel is the route label of a route path: the path, or "(root)"
// for the site's own files.
func routeLabel(path string) string {
	if path == "" {
		return rootLabel
	}
	return path
}

// Observe counts one ended exchange. It implements message.Observer.
func (q *Requests) Observe(r *message.Request, o *message.Outcome) {
	s := q.statsOf(r.Trace.Route)
	p := &s.protos[protoIndex(r.Proto)]
	p.requests[classIndex(o.Status)].Add(1)
	p.sent.Add(uint64(max(o.Sent, 0)))
	p.received.Add(uint64(max(o.Received, 0)))
	p.duration.observe(o.Duration())
	if r.Trace.Upstream != "" && r.Trace.UpstreamTime > 0 {
		q.upstreamHistogram(r.Trace.Upstream).observe(r.Trace.UpstreamTime)
	}
}

// statsOf finds the counters of a route; unrouted for none.
func (q *Requests) statsOf(info *message.RouteInfo) *routeStats {
	if info == nil {
		return q.unrouted
	}
	t := q.table.Load()
	if s := t.byInfo[info]; s != nil {
		return s
	}
	if s := t.byName[routeName{info.Site, info.Path}]; s != nil {
		return s // a RouteInfo of a config two reloads old
	}
	return q.unrouted
}

// upstreamHistogram returns the response-time histogram of an upstream,
// making it the first time (the only allocation, once per address).
func (q *Requests) upstreamHistogram(addr string) *histogram {
	if h, ok := q.upstreams.Load(addr); ok {
		return h.(*histogram)
	}
	h, _ := q.upstreams.LoadOrStore(string([]byte(addr)), &histogram{})
	return h.(*histogram)
}

// routeStats are one route's counters, by protocol.
type routeStats struct {
	site, route string // the labels
	protos      [protoCount]protoStats
}

// protoStats are one route's counters for one protocol.
type protoStats struct {
	requests       [classCount]atomic.Uint64
	sent, received atomic.Uint64
	duration       histogram
}

// Protocols counted, by index, and their label values.
const protoCount = 3

var protoLabels = [protoCount]string{"h1", "h2", "h3"}

// protoIndex is the index of a protocol; an unknown one counts as h1.
func protoIndex(p message.Proto) int {
	switch p {
	case message.HTTP2:
		return 1
	case message.HTTP3:
		return 2
	}
	return 0
}

// Status classes counted, by index: no status sent, then 1xx to 5xx.
const classCount = 6

var classLabels = [classCount]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// classIndex is the index of a status's class; 0 for none (or a status
// out of range).
func classIndex(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// durationBuckets are the upper bounds, in seconds, of the latency
// histograms: from half a millisecond (a cached file) to a minute (a
// slow upstream).
var durationBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// bucketBounds are durationBuckets as durations, for observe.
var bucketBounds = func() (b [len(durationBuckets)]time.Duration) {
	for i, s := range durationBuckets {
		b[i] = time.Duration(s * float64(time.Second))
	}
	return b
}()

// histogram is a latency histogram of atomics: counts[i] counts the
// observations in bucket i alone (not cumulative), the last one those
// above every bound; sum is in nanoseconds.
type histogram struct {
	counts [len(durationBuckets) + 1]atomic.Uint64
	sum    atomic.Uint64
}

// observe counts one duration.
func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(bucketBounds) && d > bucketBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(uint64(d))
}

// snapshot reads the histogram as Prometheus wants it: the count, the
// sum in seconds and the cumulative count of each bucket by upper bound.
func (h *histogram) snapshot() (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(durationBuckets))
	for i, bound := range durationBuckets {
		count += h.counts[i].Load()
		buckets[bound] = count
	}
	count += h.counts[len(durationBuckets)].Load()
	return count, time.Duration(h.sum.Load()).Seconds(), buckets
}

// routes returns the counters of the routes counted now, in config
// order, then those of the unrouted requests.
func (q *Requests) routes() []*routeStats {
	t := q.table.Load()
	out := make([]*routeStats, 0, len(t.ordered)+1)
	return append(append(out, t.ordered...), q.unrouted)
}

// Totals are the requests of every route counted now, by protocol.
type Totals [protoCount]uint64

// totals adds up the requests of every route by protocol.
func (q *Requests) totals() Totals {
	var t Totals
	for _, s := range q.routes() {
		for i := range s.protos {
			for c := range s.protos[i].requests {
				t[i] += s.protos[i].requests[c].Load()
			}
		}
	}
	return t
}
