package h2

import (
	"encoding/binary"

	"golang.org/x/net/http2"
)

// frameHeaderLen is the size of every frame's header (RFC 9113 section 4.1).
const frameHeaderLen = 9

// Frame flags, by the frame types that define them (RFC 9113 section 6).
const (
	flagEndStream  = http2.FlagDataEndStream // DATA, HEADERS
	flagAck        = http2.FlagSettingsAck   // SETTINGS, PING
	flagEndHeaders = http2.FlagHeadersEndHeaders
	flagPadded     = http2.FlagHeadersPadded // DATA, HEADERS
	flagPriority   = http2.FlagHeadersPriority
)

// maxWindow is the largest flow-control window (RFC 9113 section 6.9.1).
const maxWindow = 1<<31 - 1

// frameHeader is a frame's header as read from the input. Reading it
// allocates nothing; the payload stays in the input until the frame is
// handled.
type frameHeader struct {
	length   uint32
	typ      http2.FrameType
	flags    http2.Flags
	streamID uint32
}

// readFrameHeader decodes the 9 bytes at the start of b, which must hold
// them.
func readFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:      http2.FrameType(b[3]),
		flags:    http2.Flags(b[4]),
		streamID: binary.BigEndian.Uint32(b[5:]) & (1<<31 - 1),
	}
}

// has reports whether f has every flag in flags.
func (f frameHeader) has(flags http2.Flags) bool { return f.flags&flags == flags }

// unpad strips the padding of a DATA or HEADERS payload (RFC 9113
// sections 6.1 and 6.2); ok is false when the padding is longer than
// the payload allows, a connection error of type PROTOCOL_ERROR.
func unpad(f frameHeader, payload []byte) (data []byte, ok bool) {
	if !f.has(flagPadded) {
		return payload, true
	}
	if len(payload) == 0 {
		return nil, false
	}
	pad := int(payload[0])
	if pad >= len(payload) {
		return nil, false
	}
	return payload[1 : len(payload)-pad], true
}

// appendFrameHeader appends a frame header to out.
func appendFrameHeader(out []byte, length int, typ http2.FrameType, flags http2.Flags, streamID uint32) []byte {
	return append(out, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(streamID>>24), byte(streamID>>16), byte(streamID>>8), byte(streamID))
}

// appendUint32 appends v in network order.
func appendUint32(out []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(out, v)
}

// appendSetting appends one SETTINGS parameter.
func appendSetting(out []byte, id http2.SettingID, v uint32) []byte {
	return appendUint32(append(out, byte(id>>8), byte(id)), v)
}

// appendRSTStream appends a RST_STREAM frame.
func appendRSTStream(out []byte, streamID uint32, code http2.ErrCode) []byte {
	out = appendFrameHeader(out, 4, http2.FrameRSTStream, 0, streamID)
	return appendUint32(out, uint32(code))
}

// appendWindowUpdate appends a WINDOW_UPDATE frame.
func appendWindowUpdate(out []byte, streamID, increment uint32) []byte {
	out = appendFrameHeader(out, 4, http2.FrameWindowUpdate, 0, streamID)
	return appendUint32(out, increment)
}

// appendGoAway appends a GOAWAY frame without debug data.
func appendGoAway(out []byte, lastStreamID uint32, code http2.ErrCode) []byte {
	out = appendFrameHeader(out, 8, http2.FrameGoAway, 0, 0)
	out = appendUint32(out, lastStreamID)
	return appendUint32(out, uint32(code))
}

// appendPing appends a PING (not an ack) with data.
func appendPing(out []byte, data [8]byte) []byte {
	out = appendFrameHeader(out, 8, http2.FramePing, 0, 0)
	return append(out, data[:]...)
}

// appendPingAck appends the answer to a PING.
func appendPingAck(out []byte, data []byte) []byte {
	out = appendFrameHeader(out, 8, http2.FramePing, flagAck, 0)
	return append(out, data...)
}
