package h3

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
)

// Tags of the old and new process in the steering tests.
const (
	oldTestTag = 0x0a0b0c0d
	newTestTag = 0x1a1b1c1d
)

// shortPacket is a short-header packet to a connection ID that starts with
// tag, padded with a label that names it.
func shortPacket(tag uint32, label string) []byte {
	p := []byte{0x40}
	p = binary.BigEndian.AppendUint32(p, tag)
	p = append(p, bytes.Repeat([]byte{7}, connectionIDLen-4)...)
	return append(p, label...)
}

// longPacket is a long-header (Initial) packet whose destination
// connection ID has dcidLen bytes and starts with tag.
func longPacket(dcidLen int, tag uint32, label string) []byte {
	p := []byte{0xc0, 0, 0, 0, 1, byte(dcidLen)}
	dcid := binary.BigEndian.AppendUint32(nil, tag)
	dcid = append(dcid, bytes.Repeat([]byte{9}, dcidLen)...)[:dcidLen]
	p = append(p, dcid...)
	p = append(p, 0) // source connection ID length
	return append(p, label...)
}

// steeringCase is a packet and the socket the program must pick for it.
type steeringCase struct {
	name   string
	packet []byte
	want   int
}

// steeringCases covers each branch of the program.
func steeringCases() []steeringCase {
	return []steeringCase{
		{"short, new process's ID", shortPacket(newTestTag, "a"), newSocket},
		{"short, old process's ID", shortPacket(oldTestTag, "b"), oldSocket},
		{"short, unknown ID", shortPacket(0x99999999, "c"), oldSocket},
		{"long, old process's ID", longPacket(connectionIDLen, oldTestTag, "d"), oldSocket},
		{"long, new process's ID", longPacket(connectionIDLen, newTestTag, "e"), newSocket},
		{"long, client's 8-byte ID", longPacket(8, oldTestTag, "f"), newSocket},
		{"long, client's 20-byte ID", longPacket(20, 0x12345678, "g"), newSocket},
		{"long, client's 12-byte ID", longPacket(connectionIDLen, 0x12345678, "h"), newSocket},
		{"short runt", []byte{0x40, 0x1a}, oldSocket},
		{"long runt", []byte{0xc0, 0, 0, 0, 1}, oldSocket},
	}
}

func TestSteeringProgram(t *testing.T) {
	prog, err := steeringProgram(oldTestTag, newTestTag)
	if err != nil {
		t.Fatal(err)
	}
	var ins []bpf.Instruction
	for _, raw := range prog {
		ins = append(ins, raw.Disassemble())
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range steeringCases() {
		got, err := vm.Run(c.packet)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: socket %d, want %d", c.name, got, c.want)
		}
	}
}

func TestTaggedIDs(t *testing.T) {
	g := taggedIDs{tag: newTestTag}
	a, _ := g.GenerateConnectionID()
	b, _ := g.GenerateConnectionID()
	if a.Len() != connectionIDLen || g.ConnectionIDLen() != connectionIDLen {
		t.Fatalf("length %d, ConnectionIDLen %d, want %d", a.Len(), g.ConnectionIDLen(), connectionIDLen)
	}
	if binary.BigEndian.Uint32(a.Bytes()) != newTestTag || binary.BigEndian.Uint32(b.Bytes()) != newTestTag {
		t.Errorf("IDs %x and %x do not start with the tag %x", a.Bytes(), b.Bytes(), newTestTag)
	}
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two IDs are the same: %x", a.Bytes())
	}
	if (&Server{}).idGenerator() != nil {
		t.Error("a server without a tag does not leave its IDs to quic-go")
	}
}
