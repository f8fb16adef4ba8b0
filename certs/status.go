package certs

import (
	"cmp"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// statusFile, in the data directory, keeps the last issuance error of each
// name, for `anx certs`, across restarts.
const statusFile = "certificate-errors.json"

// Status is what `anx certs` shows of one certificate, or of a name that
// has none yet because issuance fails.
type Status struct {
	Names       []string  `json:"names"`
	Issuer      string    `json:"issuer"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	RenewAt     time.Time `json:"renew_at,omitzero"`
	LastError   string    `json:"last_error"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// failure is one name's last issuance error.
type failure struct {
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

// statusBook keeps the last failure per name in memory and in statusFile.
type statusBook struct {
	path string
	mu   sync.Mutex
	last map[string]failure // guarded by mu
}

// openStatusBook loads the failures kept in dir; a missing or unreadable
// file starts empty (it is a report, not state).
func openStatusBook(dir string) *statusBook {
	b := &statusBook{path: filepath.Join(dir, statusFile), last: map[string]failure{}}
	b.last = readFailures(b.path)
	return b
}

// readFailures reads a status file; missing or corrupt reads as empty.
func readFailures(path string) map[string]failure {
	last := map[string]failure{}
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &last)
	}
	return last
}

// failed records err as name's last failure.
func (b *statusBook) failed(name string, err error) {
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	b.update(func(last map[string]failure) { last[name] = failure{Error: msg, At: time.Now().UTC()} })
}

// obtained clears name's failure.
func (b *statusBook) obtained(name string) {
	b.update(func(last map[string]failure) { delete(last, name) })
}

// update changes the book and writes it out; a write error is dropped, as
// the book is only a report.
func (b *statusBook) update(change func(map[string]failure)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	change(b.last)
	data, err := json.MarshalIndent(b.last, "", "  ")
	if err == nil {
		_ = writeFileAtomic(b.path, data, certMode)
	}
}

// List reports the certificates stored under the data directory dir, with
// the renewal time for ratio (0 means DefaultRenewalWindowRatio), or the
// earlier one the CA's renewal information (ARI) led to, and the
// last issuance error of each name, plus the names whose issuance failed
// and that have no certificate. It reads files only; a running anx need
// not be asked.
func List(dir string, ratio float64) ([]Status, error) {
	if ratio <= 0 {
		ratio = DefaultRenewalWindowRatio
	}
	failures := readFailures(filepath.Join(dir, statusFile))
	var list []Status
	seen := map[string]bool{}
	root := filepath.Join(dir, "certificates")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".crt" {
			return err
		}
		s, err := certStatus(path, ratio)
		if err != nil {
			return err
		}
		s.Issuer = filepath.Base(filepath.Dir(filepath.Dir(path)))
		for _, n := range s.Names {
			seen[n] = true
			if f, ok := failures[n]; ok && f.At.After(s.LastErrorAt) {
				s.LastError, s.LastErrorAt = f.Error, f.At
			}
		}
		list = append(list, s)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("certs: %w", err)
	}
	for name, f := range failures {
		if !seen[name] {
			list = append(list, Status{Names: []string{name}, LastError: f.Error, LastErrorAt: f.At})
		}
	}
	slices.SortFunc(list, func(a, b Status) int { return cmp.Compare(a.Names[0], b.Names[0]) })
	return list, nil
}

// certStatus reads the leaf of a stored certificate chain.
func certStatus(path string, ratio float64) (Status, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return Status{}, fmt.Errorf("%s: no PEM certificate", path)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", path, err)
	}
	names := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		names = []string{leaf.Subject.CommonName}
	}
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	renewAt := leaf.NotAfter.Add(-time.Duration(float64(lifetime) * ratio))
	if ari := selectedRenewal(strings.TrimSuffix(path, ".crt") + ".json"); !ari.IsZero() && ari.Before(renewAt) {
		renewAt = ari
	}
	return Status{Names: names, NotAfter: leaf.NotAfter.UTC(), RenewAt: renewAt.UTC()}, nil
}

// storedMeta is the part of certmagic's metadata file, beside each stored
// certificate, that holds the renewal time certmagic chose in the window
// the CA's ACME renewal information (ARI, RFC 9773) suggested.
type storedMeta struct {
	IssuerData struct {
		RenewalInfo struct {
			SelectedTime time.Time `json:"_selectedTime"`
		} `json:"renewal_info"`
	} `json:"issuer_data"`
}

// selectedRenewal returns the ARI renewal time kept in a metadata file, or
// the zero time when there is none (an internal certificate, a CA without
// ARI, or no file).
func selectedRenewal(metaPath string) time.Time {
	data, err := os.ReadFile(metaPath)
	if err != nil {
		return time.Time{}
	}
	var meta storedMeta
	if json.Unmarshal(data, &meta) != nil {
		return time.Time{}
	}
	return meta.IssuerData.RenewalInfo.SelectedTime
}
