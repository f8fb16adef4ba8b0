package message

import "iter"

// Field is one header or trailer field.
type Field struct {
	Name  string
	Value string
}

// Header is an ordered list of fields. Names compare case-insensitively
// (ASCII); they are kept as given, so a front end decides how to spell them
// on the wire. The zero value is an empty header ready to use. Reset keeps
// the backing array, so a front end can reuse one Header per connection
// without allocating.
type Header struct {
	fields []Field
}

// Len returns the number of fields.
func (h *Header) Len() int { return len(h.fields) }

// Fields returns the fields in order. The slice is the header's own: do not
// keep it past the next change.
func (h *Header) Fields() []Field { return h.fields }

// Reset empties the header, keeping its storage.
func (h *Header) Reset() {
	clear(h.fields)
	h.fields = h.fields[:0]
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	h.fields = append(h.fields, Field{Name: name, Value: value})
}

// Set replaces every field called name with one field of the given value.
func (h *Header) Set(name, value string) {
	for i := range h.fields {
		if EqualFold(h.fields[i].Name, name) {
			h.fields[i].Value = value
			h.deleteFrom(i+1, name)
			return
		}
	}
	h.Add(name, value)
}

// Get returns the value of the first field called name, or "".
func (h *Header) Get(name string) string {
	for i := range h.fields {
		if EqualFold(h.fields[i].Name, name) {
			return h.fields[i].Value
		}
	}
	return ""
}

// Has reports whether a field called name is present.
func (h *Header) Has(name string) bool {
	for i := range h.fields {
		if EqualFold(h.fields[i].Name, name) {
			return true
		}
	}
	return false
}

// Count returns how many fields are called name.
func (h *Header) Count(name string) int {
	n := 0
	for i := range h.fields {
		if EqualFold(h.fields[i].Name, name) {
			n++
		}
	}
	return n
}

// Values yields the value of every field called name, in order.
func (h *Header) Values(name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range h.fields {
			if EqualFold(h.fields[i].Name, name) && !yield(h.fields[i].Value) {
				return
			}
		}
	}
}

// Del removes every field called name.
func (h *Header) Del(name string) { h.deleteFrom(0, name) }

func (h *Header) deleteFrom(start int, name string) {
	kept := h.fields[:start]
	for _, f := range h.fields[start:] {
		if !EqualFold(f.Name, name) {
			kept = append(kept, f)
		}
	}
	clear(h.fields[len(kept):])
	h.fields = kept
}

// EqualFold reports whether two ASCII strings, such as field names,
// methods or tokens of a field value, are equal ignoring case. Tokens are
// ASCII, so this is exact where strings.EqualFold's Unicode folding would
// be slower and, for "K" against the Kelvin sign, wrong.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// ConnectionSpecific reports whether a field only makes sense on one
// HTTP/1.1 connection (RFC 9110 section 7.6.1): Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade. HTTP/2 and HTTP/3
// messages carrying one are malformed (RFC 9113 section 8.2.2, RFC 9114
// section 4.2), so their front ends leave them out of responses.
func ConnectionSpecific(name string) bool {
	switch len(name) {
	case 7:
		return EqualFold(name, "Upgrade")
	case 10:
		return EqualFold(name, "Connection") || EqualFold(name, "Keep-Alive")
	case 16:
		return EqualFold(name, "Proxy-Connection")
	case 17:
		return EqualFold(name, "Transfer-Encoding")
	}
	return false
}
