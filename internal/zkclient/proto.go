package zkclient

// Opcodes (ZooDefs.OpCode).
const (
	opNotification    int32 = 0
	opCreate          int32 = 1
	opDelete          int32 = 2
	opExists          int32 = 3
	opGetData         int32 = 4
	opSetData         int32 = 5
	opGetACL          int32 = 6
	opSetACL          int32 = 7
	opGetChildren     int32 = 8
	opSync            int32 = 9
	opPing            int32 = 11
	opGetChildren2    int32 = 12
	opCheck           int32 = 13
	opMulti           int32 = 14
	opCreate2         int32 = 15
	opRemoveWatches   int32 = 18
	opCreateContainer int32 = 19
	opCreateTTL       int32 = 21
	opAuth            int32 = 100
	opSetWatches      int32 = 101
	opSetWatches2     int32 = 105
	opAddWatch        int32 = 106
	opWhoAmI          int32 = 107
	opCloseSession    int32 = -11
	opError           int32 = -1
)

// Special xids (ClientCnxn).
const (
	xidNotification int32 = -1
	xidPing         int32 = -2
	xidAuth         int32 = -4
	xidSetWatches   int32 = -8
)

// addWatch modes and removeWatches types.
const (
	addWatchPersistent          int32 = 0
	addWatchPersistentRecursive int32 = 1
	watcherTypeAny              int32 = 3
)

// replyHeaderSize is the size of ReplyHeader: xid int32, zxid int64, err int32.
const replyHeaderSize = 16

// maxFrame bounds the length of a frame from the server.
const maxFrame = 16 << 20

// defaultMaxPacket is the server's default jute.maxbuffer.
const defaultMaxPacket = 1048575

// connectResponse is ZooKeeper's ConnectResponse.
type connectResponse struct {
	protocolVersion int32
	timeout         int32
	sessionID       int64
	passwd          []byte
	readOnly        bool
}

// appendConnectRequest appends a framed ConnectRequest.
func appendConnectRequest(b []byte, lastZxid int64, timeout int32, sessionID int64, passwd []byte) []byte {
	e := enc{b}
	e.int32(0) // length, set below
	e.int32(0) // protocolVersion
	e.int64(lastZxid)
	e.int32(timeout)
	e.int64(sessionID)
	if passwd == nil {
		passwd = make([]byte, 16) // Java sends 16 zero bytes for a new session
	}
	e.buffer(passwd)
	e.bool(false) // readOnly
	putLength(e.b)
	return e.b
}

// putLength sets a frame's length prefix from its size.
func putLength(frame []byte) {
	n := uint32(len(frame) - 4)
	frame[0], frame[1], frame[2], frame[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
}

func decodeConnectResponse(b []byte) (connectResponse, error) {
	d := dec{b: b}
	var r connectResponse
	r.protocolVersion = d.int32()
	r.timeout = d.int32()
	r.sessionID = d.int64()
	r.passwd = d.bytes()
	if len(d.b) > 0 { // old servers omit readOnly
		r.readOnly = d.bool()
	}
	if r.passwd != nil {
		r.passwd = append([]byte(nil), r.passwd...)
	}
	return r, d.err
}

// replyHeader is ZooKeeper's ReplyHeader.
type replyHeader struct {
	xid  int32
	zxid int64
	err  int32
}

func decodeReplyHeader(b []byte) (replyHeader, []byte, error) {
	d := dec{b: b}
	h := replyHeader{xid: d.int32(), zxid: d.int64(), err: d.int32()}
	return h, d.b, d.err
}

// watcherEvent is ZooKeeper's WatcherEvent, the body of a notification.
type watcherEvent struct {
	typ   int32
	state int32
	path  string
}

func decodeWatcherEvent(b []byte) (watcherEvent, error) {
	d := dec{b: b}
	ev := watcherEvent{typ: d.int32(), state: d.int32(), path: d.string()}
	return ev, d.err
}

// decodeMulti decodes a MultiResponse into results, one per op; chroot is
// stripped from created paths.
func decodeMulti(b []byte, chroot string, nops int) ([]OpResult, error) {
	d := dec{b: b}
	res := make([]OpResult, 0, nops)
	for {
		typ, done, code := d.int32(), d.bool(), d.int32()
		if d.err != nil {
			return nil, d.err
		}
		if done {
			break
		}
		if len(res) == nops {
			return nil, errShort
		}
		var r OpResult
		switch typ {
		case opCreate:
			r.Path = stripChroot(chroot, d.string())
		case opCreate2:
			r.Path = stripChroot(chroot, d.string())
			r.Stat = d.stat()
		case opSetData:
			r.Stat = d.stat()
		case opDelete, opCheck:
		case opError:
			r.Err = codeErr(d.int32())
		default:
			_ = code
			return nil, errShort
		}
		res = append(res, r)
	}
	if d.err != nil {
		return nil, d.err
	}
	return res, nil
}
