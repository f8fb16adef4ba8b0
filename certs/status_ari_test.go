package certs

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// List reports the renewal time certmagic chose from the CA's renewal
// information when it is earlier than the ratio's, and the ratio's when it
// is later or missing.
func TestListARIRenewal(t *testing.T) {
	dir := t.TempDir()
	m := applyManager(t, dir, Policy{Sites: []Site{{Names: []string{"a.internal", "b.internal"}}}})
	list, err := List(dir, 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %v, %+v", err, list)
	}
	ratioA, ratioB := list[0].RenewAt, list[1].RenewAt
	early := ratioA.Add(-48 * time.Hour).Truncate(time.Second).UTC()
	late := list[1].NotAfter.Add(time.Hour)
	for name, at := range map[string]time.Time{"a.internal": early, "b.internal": late} {
		meta := fmt.Sprintf(`{"sans":[%q],"issuer_data":{"renewal_info":{"suggestedWindow":{},"_selectedTime":%q}}}`, name, at.Format(time.RFC3339))
		if err := m.storage.Store(context.Background(), certmagic.StorageKeys.SiteMeta(InternalIssuerKey, name), []byte(meta)); err != nil {
			t.Fatal(err)
		}
	}
	list, err = List(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := list[0].RenewAt; !got.Equal(early) {
		t.Errorf("a.internal renews at %v, want the earlier ARI time %v", got, early)
	}
	if got := list[1].RenewAt; !got.Equal(ratioB) {
		t.Errorf("b.internal renews at %v, want the ratio's %v (the ARI time is later)", got, ratioB)
	}
}
