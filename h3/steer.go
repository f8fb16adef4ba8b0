package h3

// Steering QUIC packets between two processes in a binary upgrade.
//
// During an upgrade two processes serve HTTP/3 on one UDP port: the old
// one drains its connections while the new one takes new connections.
// Each has its own socket on the port (SO_REUSEPORT, ListenPacket), and
// the kernel picks a socket for each datagram by running a classic BPF
// program attached to the port's group of sockets (SteerToSuccessor):
// a connection's packets reach the process that holds its state, which
// hashing the addresses across the sockets would not do (half of an old
// connection's packets would be read, and dropped, by the new process).
//
// The program reads the destination connection ID. Every ID a server
// issues starts with its ConnectionIDTag, a random number per process.
// A short-header packet (an established connection) carrying the new
// process's tag goes to the new socket, any other to the old one; a
// long-header packet (a handshake) carrying the old process's tag goes to
// the old socket, any other, chiefly a client's first Initial with an ID
// of its own choosing, to the new one. The group holds the old socket at
// index 0 and the new one at 1 while both live; an index with no socket
// makes the kernel fall back to its hash, so before the new socket joins,
// and after the old one has closed, every packet reaches the one socket
// there is. A third socket would shift the indexes: an upgrade waits
// until the previous old process has exited (cmd/anx).

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/bpf"
)

// connectionIDLen is the length of the connection IDs a Server with a
// ConnectionIDTag issues: the tag's 4 bytes, then 8 random ones.
const connectionIDLen = 12

// NewConnectionIDTag returns a random tag for a Server's connection IDs,
// never zero.
func NewConnectionIDTag() uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		if tag := binary.BigEndian.Uint32(b[:]); tag != 0 {
			return tag
		}
	}
}

// taggedIDs issues connection IDs that start with a tag.
type taggedIDs struct{ tag uint32 }

// GenerateConnectionID returns the tag and 8 random bytes.
func (g taggedIDs) GenerateConnectionID() (quic.ConnectionID, error) {
	var b [connectionIDLen]byte
	binary.BigEndian.PutUint32(b[:4], g.tag)
	rand.Read(b[4:])
	return quic.ConnectionIDFromBytes(b[:]), nil
}

// ConnectionIDLen is connectionIDLen.
func (taggedIDs) ConnectionIDLen() int { return connectionIDLen }

// idGenerator is the generator of a server's connection IDs: tagged ones
// when it has a tag, quic-go's own otherwise.
func (s *Server) idGenerator() quic.ConnectionIDGenerator {
	if s.ConnectionIDTag == 0 {
		return nil
	}
	return taggedIDs{tag: s.ConnectionIDTag}
}

// Offsets in a QUIC packet (RFC 9000 section 17): the first byte's high
// bit marks a long header; a long header's destination connection ID
// length is at byte 5 and the ID follows; a short header's ID is at byte
// 1, its length known to the server alone.
const (
	longHeaderBit = 0x80
	longDCIDLenAt = 5
	longDCIDAt    = 6
	shortDCIDAt   = 1
)

// The indexes of the sockets in the port's group during an upgrade.
const (
	oldSocket = 0
	newSocket = 1
)

// steeringProgram is the classic BPF program that sends a packet to the
// socket of the process holding its connection (see the top of this
// file). A load past the end of a datagram ends the program with 0: a
// runt goes to the old socket, which drops it.
func steeringProgram(oldTag, newTag uint32) ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: longHeaderBit, SkipTrue: 2}, // long: 4
		/* 2 */ bpf.LoadAbsolute{Off: shortDCIDAt, Size: 4},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: newTag, SkipTrue: 5, SkipFalse: 4}, // 9 : 8
		/* 4 */ bpf.LoadAbsolute{Off: longDCIDLenAt, Size: 1},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: connectionIDLen, SkipFalse: 3}, // 6 : 9
		/* 6 */ bpf.LoadAbsolute{Off: longDCIDAt, Size: 4},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: oldTag, SkipFalse: 1}, // 8 : 9
		/* 8 */ bpf.RetConstant{Val: oldSocket},
		/* 9 */ bpf.RetConstant{Val: newSocket},
	})
}
