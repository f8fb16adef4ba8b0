package netpoll

// stats reads the loop's figures; it runs on the loop.
func (l *Loop) stats() LoopStats {
	st := LoopStats{Index: l.index, Wakeups: l.wakeups.Load(), Conns: l.nconns}
	for _, c := range l.conns {
		if c != nil {
			st.Queued += c.Buffered()
		}
	}
	return st
}
