package certs

// Certificates reports the certificates the manager stores, with the last
// issuance error of each name, as List does for its data directory.
func (m *Manager) Certificates() ([]Status, error) { return List(m.dir, 0) }
