package static

// WaitForCompressions waits until the files being compressed off the
// request's goroutine are cached: a test's event to wait for.
func (h *Handler) WaitForCompressions() { h.variants.jobs.Wait() }

// CompressedVariants returns how many variants are cached and the memory
// they are counted for.
func (h *Handler) CompressedVariants() (count int, used int64) {
	vc := h.variants
	vc.mu.Lock()
	defer vc.mu.Unlock()
	return len(vc.byKey), vc.used
}
