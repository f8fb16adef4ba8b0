package main

import "github.com/anx-gateway/anx/core/message"

// observers passes each ended exchange to every Observer in turn (the
// access log, the metrics). The protocol servers hold one, built before
// they start; it does not change after.
type observers []message.Observer

// Observe implements message.Observer.
func (o observers) Observe(r *message.Request, out *message.Outcome) {
	for _, x := range o {
		x.Observe(r, out)
	}
}
