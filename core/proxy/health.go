package proxy

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/anx-gateway/anx/core/message"
)

// maxHealthBody bounds what a check reads of a response body: enough to
// keep the connection, not a way to make anx read without end.
const maxHealthBody = 64 << 10

// checker runs a route's active health checks on a goroutine of its own,
// started by New and stopped by Close.
type checker struct {
	h    *Handler
	stop chan struct{}
	done chan struct{}
}

func (h *Handler) startChecks() {
	if h.cfg.Health.Path == "" {
		return
	}
	c := &checker{h: h, stop: make(chan struct{}), done: make(chan struct{})}
	h.checks = c
	go c.run()
}

// run checks every upstream each Interval until stop is closed.
func (c *checker) run() {
	defer close(c.done)
	tick := time.NewTicker(c.h.cfg.Health.Interval)
	defer tick.Stop()
	for {
		c.round()
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
	}
}

// round checks every upstream at once and waits for all the checks.
func (c *checker) round() {
	var wg sync.WaitGroup
	for _, u := range c.h.ups {
		wg.Go(func() { c.h.noteCheck(u, c.h.check(u)) })
	}
	wg.Wait()
}

func (c *checker) close() {
	close(c.stop)
	<-c.done
}

// check sends one health check to u and reports whether it passed.
func (h *Handler) check(u *upstream) bool {
	hc := &h.cfg.Health
	ctx, cancel := context.WithTimeout(context.Background(), hc.Timeout)
	defer cancel()
	host := hc.Host
	if host == "" {
		host = u.target.Host
	}
	req := &outRequest{Method: "GET", Target: hc.Path, Host: host, Header: new(message.Header)}
	resp, err := u.tr.roundTrip(ctx, req)
	if err != nil {
		return false
	}
	if resp.Conn != nil {
		resp.Conn.Close()
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody))
	status := resp.Status
	u.tr.recycle(resp)
	return statusMatches(status, hc.Status)
}

// statusMatches reports whether status is what a healthy upstream answers:
// want is a code, a class (2 for 2xx), or 0 for any 2xx.
func statusMatches(status, want int) bool {
	switch {
	case want == 0:
		return status/100 == 2
	case want < 10:
		return status/100 == want
	}
	return status == want
}

// noteCheck counts a check's result and changes u's state after Passes
// passes or Fails failures in a row. It runs on the checker's goroutine.
func (h *Handler) noteCheck(u *upstream, ok bool) {
	hc := &h.cfg.Health
	if ok {
		u.failsInRow = 0
		u.passes++
		if u.checkDown.Load() && u.passes >= hc.Passes {
			u.upSince.Store(time.Now().UnixNano())
			u.checkDown.Store(false)
			h.log.Info("proxy: upstream healthy again", "route", h.cfg.Name, "upstream", u.url)
		}
		return
	}
	u.passes = 0
	u.failsInRow++
	if !u.checkDown.Load() && u.failsInRow >= hc.Fails {
		u.checkDown.Store(true)
		h.log.Warn("proxy: upstream failed its health check", "route", h.cfg.Name, "upstream", u.url, "path", hc.Path)
	}
}
