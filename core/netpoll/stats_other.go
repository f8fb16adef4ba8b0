//go:build !linux

package netpoll

// stats has nothing to read: there are no loops on this system.
func (l *Loop) stats() LoopStats { return LoopStats{} }
