package message

import (
	"testing"
	"time"
)

func TestDate(t *testing.T) {
	var d Date
	now := time.Date(1994, time.November, 6, 8, 49, 37, 0, time.FixedZone("CET", 3600))
	if got, want := d.Value(now), "Sun, 06 Nov 1994 07:49:37 GMT"; got != want {
		t.Errorf("Value = %q, want %q", got, want)
	}
	if got, want := d.Line(now.Add(500*time.Millisecond)), "Date: Sun, 06 Nov 1994 07:49:37 GMT\r\n"; got != want {
		t.Errorf("Line within the same second = %q, want %q", got, want)
	}
	if got, want := d.Value(now.Add(time.Second)), "Sun, 06 Nov 1994 07:49:38 GMT"; got != want {
		t.Errorf("Value a second later = %q, want %q", got, want)
	}
	if allocs := testing.AllocsPerRun(100, func() { d.Value(now.Add(time.Second)) }); allocs != 0 {
		t.Errorf("Value within a second allocates %v times, want 0", allocs)
	}
}
