package lighthouse

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// The participants' nodes, in Apache Curator's LeaderLatch format, so that
// Go and Java participants share one election.

// Node names follow Apache Curator's LeaderLatch with protection:
// "_c_" + a random UUID + "-latch-" + ZooKeeper's 10-digit sequence, the
// node's data being the participant's ID. Participants sort by sequence.
const (
	protectedPrefix = "_c_"
	latchName       = "latch-"
)

// encodeParticipant and decodeParticipant give a participant node's data:
// the ID, then, if there is any, a NUL byte and the participant's data.
func encodeParticipant(id string, data []byte) []byte {
	if data == nil {
		return []byte(id)
	}
	return append(append([]byte(id), 0), data...)
}

func decodeParticipant(b []byte) (id string, data []byte) {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i]), b[i+1:]
	}
	return string(b), nil
}

// electionNodes returns the election's participant nodes in queue order,
// leaving out children that are not LeaderLatch nodes.
func electionNodes(children []string) []string {
	queue := children[:0:0]
	for _, c := range children {
		if prefix, _, ok := ParseSequence(c); ok && strings.HasSuffix(prefix, latchName) {
			queue = append(queue, c)
		}
	}
	SortSequential(queue)
	return queue
}

// newUUID returns a random (version 4) UUID in canonical form, as Curator's
// protected names use.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
