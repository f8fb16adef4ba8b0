package admin

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the Requests' atomics and the Sources' figures as
// Prometheus metrics, read at scrape time.
type collector struct {
	requests *Requests
	sources  Sources
	now      func() time.Time
}

// The metrics' descriptions.
var (
	routeLabels          = []string{"site", "route", "proto"}
	requestsDesc         = prometheus.NewDesc("anx_http_requests_total", "Requests that ended, by site, route, protocol and status class (none: no status was sent).", append(routeLabels, "code_class"), nil)
	durationDesc         = prometheus.NewDesc("anx_http_request_duration_seconds", "Time from a request's head to the end of its response.", routeLabels, nil)
	responseBytesDesc    = prometheus.NewDesc("anx_http_response_bytes_total", "Response content bytes sent.", routeLabels, nil)
	requestBytesDesc     = prometheus.NewDesc("anx_http_request_bytes_total", "Request content bytes received.", routeLabels, nil)
	connectionsDesc      = prometheus.NewDesc("anx_connections_open", "Open client connections by protocol and state.", []string{"proto", "state"}, nil)
	handshakesDesc       = prometheus.NewDesc("anx_tls_handshakes_total", "TLS handshakes on TCP that completed.", nil, nil)
	handshakeFailDesc    = prometheus.NewDesc("anx_tls_handshake_failures_total", "TLS handshakes on TCP that failed, by reason.", []string{"reason"}, nil)
	refusedDesc          = prometheus.NewDesc("anx_connections_refused_total", "Client connections refused by a connection limit, by the config key that refused them (over HTTP/3, one per Initial packet refused).", []string{"reason"}, nil)
	certExpiryDesc       = prometheus.NewDesc("anx_certificate_expiry_seconds", "Seconds until the certificate expires (negative: expired).", []string{"name", "issuer"}, nil)
	certErrorDesc        = prometheus.NewDesc("anx_certificate_renewal_error", "1 for a certificate whose last obtain or renewal failed, with the error.", []string{"name", "error"}, nil)
	upstreamUpDesc       = prometheus.NewDesc("anx_upstream_up", "1 when requests may go to the upstream, 0 when health checks or passive health took it out.", []string{"route", "upstream"}, nil)
	upstreamReqDesc      = prometheus.NewDesc("anx_upstream_requests_total", "Attempts sent to the upstream, retries included.", []string{"route", "upstream"}, nil)
	upstreamFailDesc     = prometheus.NewDesc("anx_upstream_failures_total", "Attempts to the upstream that got no response.", []string{"route", "upstream"}, nil)
	upstreamRetryDesc    = prometheus.NewDesc("anx_upstream_retries_total", "Attempts to the upstream that retried a failed one.", []string{"route", "upstream"}, nil)
	upstreamInFlightDesc = prometheus.NewDesc("anx_upstream_in_flight", "Requests being served through the upstream.", []string{"route", "upstream"}, nil)
	upstreamBreakerDesc  = prometheus.NewDesc("anx_upstream_breaker", "1 for the state the upstream's circuit breaker is in (closed, open, half_open), 0 for the others; absent without a breaker.", []string{"route", "upstream", "state"}, nil)
	upstreamPooledDesc   = prometheus.NewDesc("anx_upstream_pooled_connections", "Idle connections to the upstream kept for reuse.", []string{"route", "upstream"}, nil)
	upstreamLatencyDesc  = prometheus.NewDesc("anx_upstream_response_seconds", "Time until the upstream's response head arrived.", []string{"upstream"}, nil)
	rateLimitedDesc      = prometheus.NewDesc("anx_rate_limited_total", "Requests a route's rate_limit refused with 429.", []string{"site", "route"}, nil)
	rateDelayedDesc      = prometheus.NewDesc("anx_rate_limit_delayed_total", "Requests a route's rate_limit delayed within its burst.", []string{"site", "route"}, nil)
	rateKeysDesc         = prometheus.NewDesc("anx_rate_limit_keys", "Keys a route's rate limiter tracks (at most 100000).", []string{"site", "route"}, nil)
	loopWakeupsDesc      = prometheus.NewDesc("anx_loop_wakeups_total", "Returns from epoll_wait of each event loop.", []string{"listener", "loop"}, nil)
	loopConnsDesc        = prometheus.NewDesc("anx_loop_connections", "Connections held by each event loop.", []string{"listener", "loop"}, nil)
	loopQueuedDesc       = prometheus.NewDesc("anx_loop_queued_output_bytes", "Output queued on each event loop's connections, not yet taken by the sockets.", []string{"listener", "loop"}, nil)
)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, durationDesc, responseBytesDesc, requestBytesDesc,
		connectionsDesc, handshakesDesc, handshakeFailDesc, refusedDesc, certExpiryDesc, certErrorDesc,
		upstreamUpDesc, upstreamReqDesc, upstreamFailDesc, upstreamRetryDesc, upstreamInFlightDesc, upstreamPooledDesc, upstreamBreakerDesc,
		upstreamLatencyDesc, rateLimitedDesc, rateDelayedDesc, rateKeysDesc, loopWakeupsDesc, loopConnsDesc, loopQueuedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.collectRequests(ch)
	c.collectUpstreamLatency(ch)
	if c.sources.Connections != nil {
		for _, x := range c.sources.Connections() {
			ch <- prometheus.MustNewConstMetric(connectionsDesc, prometheus.GaugeValue, float64(x.Open), x.Proto, x.State)
		}
	}
	if c.sources.Handshakes != nil {
		c.collectHandshakes(ch, c.sources.Handshakes())
	}
	if c.sources.Refused != nil {
		for reason, n := range c.sources.Refused() {
			ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(n), reason)
		}
	}
	if c.sources.Certificates != nil {
		c.collectCertificates(ch, c.sources.Certificates())
	}
	if c.sources.Upstreams != nil {
		c.collectUpstreams(ch, c.sources.Upstreams())
	}
	if c.sources.Loops != nil {
		c.collectLoops(ch, c.sources.Loops())
	}
	if c.sources.RateLimits != nil {
		for _, l := range c.sources.RateLimits() {
			ch <- prometheus.MustNewConstMetric(rateLimitedDesc, prometheus.CounterValue, float64(l.Limited), l.Site, l.Route)
			ch <- prometheus.MustNewConstMetric(rateDelayedDesc, prometheus.CounterValue, float64(l.Delayed), l.Site, l.Route)
			ch <- prometheus.MustNewConstMetric(rateKeysDesc, prometheus.GaugeValue, float64(l.Keys), l.Site, l.Route)
		}
	}
}

// collectRequests reads every route's counters.
func (c *collector) collectRequests(ch chan<- prometheus.Metric) {
	for _, s := range c.requests.routes() {
		for i := range s.protos {
			p := &s.protos[i]
			labels := []string{s.site, s.route, protoLabels[i]}
			for class := range p.requests {
				n := p.requests[class].Load()
				if n == 0 {
					continue
				}
				ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), append(labels, classLabels[class])...)
			}
			count, sum, buckets := p.duration.snapshot()
			if count == 0 {
				continue // a protocol the route never served
			}
			ch <- prometheus.MustNewConstHistogram(durationDesc, count, sum, buckets, labels...)
			ch <- prometheus.MustNewConstMetric(responseBytesDesc, prometheus.CounterValue, float64(p.sent.Load()), labels...)
			ch <- prometheus.MustNewConstMetric(requestBytesDesc, prometheus.CounterValue, float64(p.received.Load()), labels...)
		}
	}
}

// collectUpstreamLatency reads the upstreams' response-time histograms.
func (c *collector) collectUpstreamLatency(ch chan<- prometheus.Metric) {
	c.requests.upstreams.Range(func(addr, h any) bool {
		count, sum, buckets := h.(*histogram).snapshot()
		ch <- prometheus.MustNewConstHistogram(upstreamLatencyDesc, count, sum, buckets, addr.(string))
		return true
	})
}

// collectHandshakes reads the TLS handshake counts.
func (c *collector) collectHandshakes(ch chan<- prometheus.Metric, h Handshakes) {
	ch <- prometheus.MustNewConstMetric(handshakesDesc, prometheus.CounterValue, float64(h.Completed))
	for reason, n := range h.Failed {
		ch <- prometheus.MustNewConstMetric(handshakeFailDesc, prometheus.CounterValue, float64(n), reason)
	}
}

// collectCertificates reads the managed certificates.
func (c *collector) collectCertificates(ch chan<- prometheus.Metric, certs []Certificate) {
	now := c.now()
	for _, cert := range certs {
		if !cert.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, cert.NotAfter.Sub(now).Seconds(), cert.Name, cert.Issuer)
		}
		if cert.LastError != "" {
			ch <- prometheus.MustNewConstMetric(certErrorDesc, prometheus.GaugeValue, 1, cert.Name, shorten(cert.LastError))
		}
	}
}

// collectUpstreams reads the upstreams' health and counters.
func (c *collector) collectUpstreams(ch chan<- prometheus.Metric, ups []Upstream) {
	for _, u := range ups {
		labels := []string{u.Route, u.URL}
		ch <- prometheus.MustNewConstMetric(upstreamUpDesc, prometheus.GaugeValue, boolValue(u.Up), labels...)
		ch <- prometheus.MustNewConstMetric(upstreamReqDesc, prometheus.CounterValue, float64(u.Requests), labels...)
		ch <- prometheus.MustNewConstMetric(upstreamFailDesc, prometheus.CounterValue, float64(u.Failures), labels...)
		ch <- prometheus.MustNewConstMetric(upstreamRetryDesc, prometheus.CounterValue, float64(u.Retries), labels...)
		ch <- prometheus.MustNewConstMetric(upstreamInFlightDesc, prometheus.GaugeValue, float64(u.InFlight), labels...)
		if u.Pooled >= 0 {
			ch <- prometheus.MustNewConstMetric(upstreamPooledDesc, prometheus.GaugeValue, float64(u.Pooled), labels...)
		}
		for _, state := range breakerStates(u.Breaker) {
			ch <- prometheus.MustNewConstMetric(upstreamBreakerDesc, prometheus.GaugeValue, boolValue(state == u.Breaker), u.Route, u.URL, state)
		}
	}
}

// breakerStates lists a breaker's states for its metric; none when
// current is "" (the route has no breaker).
func breakerStates(current string) []string {
	if current == "" {
		return nil
	}
	return []string{"closed", "open", "half_open"}
}

// collectLoops reads the event loops' counters.
func (c *collector) collectLoops(ch chan<- prometheus.Metric, loops []Loop) {
	for _, l := range loops {
		labels := []string{l.Listener, strconv.Itoa(l.Index)}
		ch <- prometheus.MustNewConstMetric(loopWakeupsDesc, prometheus.CounterValue, float64(l.Wakeups), labels...)
		ch <- prometheus.MustNewConstMetric(loopConnsDesc, prometheus.GaugeValue, float64(l.Conns), labels...)
		ch <- prometheus.MustNewConstMetric(loopQueuedDesc, prometheus.GaugeValue, float64(l.Queued), labels...)
	}
}

// boolValue is 1 for true, 0 for false.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// maxErrorLabel bounds the error label of anx_certificate_renewal_error:
// an ACME error can carry a whole problem document.
const maxErrorLabel = 200

// shorten cuts an error text to maxErrorLabel bytes, on a rune boundary.
func shorten(s string) string {
	if len(s) <= maxErrorLabel {
		return s
	}
	cut := maxErrorLabel
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
