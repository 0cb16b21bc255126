package zkclient

import (
	"encoding/binary"
	"errors"
)

// Jute, ZooKeeper's serialization: big-endian int32/int64, booleans as one
// byte, buffers and strings as an int32 length (-1 for null) and the bytes,
// vectors as an int32 count (-1 for null) and the elements.

// enc appends jute values to a byte slice.
type enc struct{ b []byte }

func (e *enc) int32(v int32) { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)) }
func (e *enc) int64(v int64) { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }

func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) string(s string) {
	e.int32(int32(len(s)))
	e.b = append(e.b, s...)
}

// buffer writes b; a nil b is written as null (-1), as Java does.
func (e *enc) buffer(b []byte) {
	if b == nil {
		e.int32(-1)
		return
	}
	e.int32(int32(len(b)))
	e.b = append(e.b, b...)
}

func (e *enc) strings(v []string) {
	e.int32(int32(len(v)))
	for _, s := range v {
		e.string(s)
	}
}

func (e *enc) acls(v []ACL) {
	e.int32(int32(len(v)))
	for _, a := range v {
		e.int32(a.Perms)
		e.string(a.Scheme)
		e.string(a.ID)
	}
}

// errShort is the decoding error of a record that ends early or has a
// length that cannot fit in what is left.
var errShort = errors.New("zk: malformed reply")

// dec reads jute values from a byte slice. The first error sticks: later
// reads return zero values, so a record is decoded in full and checked once.
// No length read from the input allocates more than the input's remaining
// size.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() { d.err, d.b = errShort, nil }

func (d *dec) int32() int32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := int32(binary.BigEndian.Uint32(d.b))
	d.b = d.b[4:]
	return v
}

func (d *dec) int64() int64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := int64(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *dec) bool() bool {
	if len(d.b) < 1 {
		d.fail()
		return false
	}
	v := d.b[0] != 0
	d.b = d.b[1:]
	return v
}

// bytes returns the next buffer, sharing the input's memory; null is nil.
func (d *dec) bytes() []byte {
	n := d.int32()
	if n == -1 || d.err != nil {
		return nil
	}
	if n < 0 || int(n) > len(d.b) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) string() string { return string(d.bytes()) }

// count reads a vector's length, checking that count elements of at least
// minSize bytes each fit in the rest of the input.
func (d *dec) count(minSize int) int {
	n := d.int32()
	if n == -1 || d.err != nil {
		return 0
	}
	if n < 0 || int(n) > len(d.b)/minSize {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *dec) strings() []string {
	n := d.count(4)
	if n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.string()
	}
	if d.err != nil {
		return nil
	}
	return v
}

func (d *dec) acls() []ACL {
	n := d.count(12)
	if n == 0 {
		return nil
	}
	v := make([]ACL, n)
	for i := range v {
		v[i].Perms = d.int32()
		v[i].Scheme = d.string()
		v[i].ID = d.string()
	}
	if d.err != nil {
		return nil
	}
	return v
}

// statSize is the encoded size of a Stat.
const statSize = 8*4 + 4*3 + 8 + 4*2 + 8

func (d *dec) stat() *Stat {
	if len(d.b) < statSize {
		d.fail()
		return nil
	}
	return &Stat{
		Czxid:          d.int64(),
		Mzxid:          d.int64(),
		Ctime:          d.int64(),
		Mtime:          d.int64(),
		Version:        d.int32(),
		Cversion:       d.int32(),
		Aversion:       d.int32(),
		EphemeralOwner: d.int64(),
		DataLength:     d.int32(),
		NumChildren:    d.int32(),
		Pzxid:          d.int64(),
	}
}

func (e *enc) stat(s *Stat) {
	e.int64(s.Czxid)
	e.int64(s.Mzxid)
	e.int64(s.Ctime)
	e.int64(s.Mtime)
	e.int32(s.Version)
	e.int32(s.Cversion)
	e.int32(s.Aversion)
	e.int64(s.EphemeralOwner)
	e.int32(s.DataLength)
	e.int32(s.NumChildren)
	e.int64(s.Pzxid)
}
