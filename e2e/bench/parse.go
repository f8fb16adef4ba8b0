package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run printed.
type wrkResult struct {
	Requests  int64         // completed responses, any status
	Duration  time.Duration // the measured time
	Bytes     int64         // bytes read
	ReqPerSec float64       // Requests/sec, scaled down to the 2xx and 3xx responses
	Errors    int64         // socket errors (connect, read, write, timeout) + non-2xx/3xx responses
	P99       time.Duration // 99th percentile latency; 0 without --latency
}

// MBPerSec returns the bytes read per second in MB (10^6 bytes).
func (r wrkResult) MBPerSec() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Duration.Seconds() / 1e6
}

// The lines of wrk's and h2load's reports that hold the numbers.
const (
	wrkTotals  = `(?m)^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+\w*B) read`
	wrkRPS     = `(?m)^Requests/sec:\s*([\d.]+)`
	wrkSocket  = `(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`
	wrkNon2xx  = `(?m)^\s*Non-2xx or 3xx responses: (\d+)`
	wrkP99     = `(?m)^\s*99%\s+([\d.]+\w+)`
	h2Finished = `(?m)^finished in ([\d.]+\w+), [\d.]+ req/s`
	h2Requests = `(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`
	h2NoConn   = `client could not connect to host`
)

// errNoResult says a tool printed no report (it could not connect, or was killed).
type errNoResult string

func (e errNoResult) Error() string { return string(e) + ": no result in the output" }

// find returns the submatches of the pattern pat in out.
func find(pat, out string) []string { return regexp.MustCompile(pat).FindStringSubmatch(out) }

// parseWrk reads wrk's report (wrk 4.1, with or without --latency).
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := find(wrkTotals, out)
	rps := find(wrkRPS, out)
	if m == nil || rps == nil {
		return r, fmt.Errorf("%w: %q", errNoResult("wrk"), clip(out))
	}
	var err error
	if r.Requests, err = strconv.ParseInt(m[1], 10, 64); err != nil {
		return r, err
	}
	if r.Duration, err = parseDuration(m[2]); err != nil {
		return r, err
	}
	if r.Bytes, err = parseBytes(m[3]); err != nil {
		return r, err
	}
	if r.ReqPerSec, err = strconv.ParseFloat(rps[1], 64); err != nil {
		return r, err
	}
	if s := find(wrkSocket, out); s != nil {
		r.Errors += sumInts(s[1:])
	}
	if s := find(wrkNon2xx, out); s != nil && r.Requests > 0 {
		bad := sumInts(s[1:])
		r.Errors += bad
		r.ReqPerSec *= float64(r.Requests-bad) / float64(r.Requests) // good responses only
	}
	if s := find(wrkP99, out); s != nil {
		if r.P99, err = parseDuration(s[1]); err != nil {
			return r, err
		}
	}
	return r, nil
}

// h2loadResult is what one h2load run printed.
type h2loadResult struct {
	Duration  time.Duration
	ReqPerSec float64 // succeeded requests per second (h2load's own req/s counts failed ones too)
	Succeeded int64   // requests that got a response
	Failed    int64   // failed (including 4xx and 5xx) + errored + timeout
	// NoConnect counts "client could not connect to host": a client whose
	// (re)connection failed, which h2load does not always count as a
	// failed request when the connection had no request in flight.
	NoConnect int64
}

// parseH2load reads h2load's report (nghttp2 1.52).
func parseH2load(out string) (h2loadResult, error) {
	var r h2loadResult
	f := find(h2Finished, out)
	q := find(h2Requests, out)
	if f == nil || q == nil {
		return r, fmt.Errorf("%w: %q", errNoResult("h2load"), clip(out))
	}
	var err error
	if r.Duration, err = parseDuration(f[1]); err != nil {
		return r, err
	}
	r.Succeeded = sumInts(q[4:5])
	r.Failed = sumInts(q[5:8]) // "failed" already holds 4xx and 5xx responses
	r.NoConnect = int64(len(regexp.MustCompile(h2NoConn).FindAllStringIndex(out, -1)))
	if r.Duration > 0 {
		r.ReqPerSec = float64(r.Succeeded) / r.Duration.Seconds()
	}
	return r, nil
}

// parseDuration reads wrk's and h2load's durations: 729.06us, 1.00ms, 2.00s, 1.50m, 1.00h.
func parseDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("duration %q: no unit", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second,
		"m": time.Minute, "h": time.Hour}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("duration %q: unknown unit", s)
	}
	return time.Duration(v * float64(unit)), nil
}

// parseBytes reads wrk's sizes, whose K, M, G, T are powers of 1024: 235.49MB, 512B.
func parseBytes(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("size %q: no unit", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	shift, ok := map[string]uint{"B": 0, "KB": 10, "MB": 20, "GB": 30, "TB": 40}[s[i:]]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit", s)
	}
	return int64(v * float64(int64(1)<<shift)), nil
}

// sumInts adds decimal strings the regexps matched.
func sumInts(ss []string) int64 {
	var n int64
	for _, s := range ss {
		v, _ := strconv.ParseInt(s, 10, 64)
		n += v
	}
	return n
}

// clip shortens a tool's output for an error message.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = "..." + s[len(s)-300:]
	}
	return s
}
