package lighthouse

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/lighthouse-zk/lighthouse/zktest"
)

type codecTestConfig struct {
	Replicas int               `json:"replicas"`
	Region   string            `json:"region,omitempty"`
	Labels   map[string]string `json:"labels"` // not omitempty: {} and nil must round trip
}

// roundTrip encodes v with c, checks the bytes if want is not nil, and
// decodes them back to v.
func roundTrip[T any](t *testing.T, c Codec[T], v T, want []byte) {
	t.Helper()
	data, err := c.Encode(v)
	if err != nil {
		t.Fatalf("Encode(%v): %v", v, err)
	}
	if want != nil && string(data) != string(want) {
		t.Fatalf("Encode(%v) = %q, want %q", v, data, want)
	}
	got, err := c.Decode(data)
	if err != nil {
		t.Fatalf("Decode(%q): %v", data, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("Decode(Encode(%v)) = %v", v, got)
	}
}

func TestCodecRoundTrips(t *testing.T) {
	t.Run("bytes", func(t *testing.T) {
		roundTrip(t, Bytes(), []byte{0, 1, 0xff}, []byte{0, 1, 0xff})
		roundTrip(t, Bytes(), []byte{}, []byte{})
	})
	t.Run("string", func(t *testing.T) {
		for _, v := range []string{"", "10.0.0.7:8080", "héllo, 世界", "a\x00b"} {
			roundTrip(t, String(), v, []byte(v))
		}
	})
	t.Run("int", func(t *testing.T) {
		for v, text := range map[int64]string{0: "0", 42: "42", -7: "-7", math.MaxInt64: "9223372036854775807", math.MinInt64: "-9223372036854775808"} {
			roundTrip(t, Int(), v, []byte(text))
		}
	})
	t.Run("json", func(t *testing.T) {
		roundTrip(t, JSON[codecTestConfig](), codecTestConfig{Replicas: 3, Region: "eu", Labels: map[string]string{"tier": "gold"}}, []byte(`{"replicas":3,"region":"eu","labels":{"tier":"gold"}}`))
		roundTrip(t, JSON[[]string](), []string{"a", "b"}, []byte(`["a","b"]`))
		roundTrip(t, JSON[*codecTestConfig](), nil, []byte(`null`))
	})
}

func TestCodecRejectsMalformedData(t *testing.T) {
	for _, tc := range []struct {
		name string
		dec  func([]byte) error
		data string
	}{
		{"string not UTF-8", decodeErr(String()), "\xff\xfe"},
		{"int empty", decodeErr(Int()), ""},
		{"int text", decodeErr(Int()), "forty-two"},
		{"int newline", decodeErr(Int()), "42\n"},
		{"int float", decodeErr(Int()), "4.2"},
		{"int too large", decodeErr(Int()), "9223372036854775808"},
		{"int binary", decodeErr(Int()), "\x00\x00\x00\x00\x00\x00\x00\x2a"},
		{"json empty", decodeErr(JSON[codecTestConfig]()), ""},
		{"json truncated", decodeErr(JSON[codecTestConfig]()), `{"replicas":3`},
		{"json wrong type", decodeErr(JSON[codecTestConfig]()), `{"replicas":"three"}`},
		{"json trailing", decodeErr(JSON[codecTestConfig]()), `{} {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.dec([]byte(tc.data))
			if !errors.Is(err, ErrDecode) || !prefixedOnce(err) {
				t.Fatalf("Decode(%q) = %v, want ErrDecode, said with one lighthouse: prefix", tc.data, err)
			}
		})
	}
	if _, err := String().Encode("\xff"); !errors.Is(err, ErrEncode) || !prefixedOnce(err) {
		t.Fatalf("String().Encode of invalid UTF-8: %v, want ErrEncode with one prefix", err)
	}
	if _, err := JSON[float64]().Encode(math.NaN()); !errors.Is(err, ErrEncode) || !prefixedOnce(err) {
		t.Fatalf("JSON().Encode(NaN): %v, want ErrEncode with one prefix", err)
	}
	if _, err := DecodeServiceInstance([]byte("null")); !errors.Is(err, ErrInvalidInstance) || !prefixedOnce(err) {
		t.Fatalf("DecodeServiceInstance(null): %v, want ErrInvalidInstance with one prefix", err)
	}
}

// prefixedOnce reports whether err's message starts with "lighthouse: "
// and says it only there.
func prefixedOnce(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "lighthouse: ") && strings.Count(err.Error(), "lighthouse:") == 1
}

// plainCodec is a caller's Codec whose errors wrap no sentinel.
type plainCodec struct{}

func (plainCodec) Encode(string) ([]byte, error) { return nil, errors.New("no encoding today") }
func (plainCodec) Decode([]byte) (string, error) { return "", errors.New("no decoding today") }

// Errors of codecs, the library's or a caller's, match ErrEncode and
// ErrDecode and say "lighthouse:" once, through GetAs, SetAs and Txn. They
// matched no sentinel before (encoding), and GetAs passed a caller's
// decoding error on as it was.
func TestCodecErrorsThroughOperations(t *testing.T) {
	s := connect(t, zktest.Shared(t).Root(t))
	ctx := testCtx(t)
	if _, err := s.Create(ctx, "/n", []byte("x"), Persistent); err != nil {
		t.Fatal(err)
	}
	if _, err := SetAs(ctx, s, "/n", "\xff", AnyVersion, String()); !errors.Is(err, ErrEncode) || !prefixedOnce(err) {
		t.Errorf("SetAs of invalid UTF-8: %v", err)
	}
	if _, err := SetAs(ctx, s, "/n", "v", AnyVersion, Codec[string](plainCodec{})); !errors.Is(err, ErrEncode) || !prefixedOnce(err) {
		t.Errorf("SetAs with a caller's codec: %v", err)
	}
	if _, _, err := GetAs(ctx, s, "/n", Codec[string](plainCodec{})); !errors.Is(err, ErrDecode) || !prefixedOnce(err) {
		t.Errorf("GetAs with a caller's codec: %v", err)
	}
	if _, _, err := GetAs(ctx, s, "/n", Int()); !errors.Is(err, ErrDecode) || !prefixedOnce(err) || !strings.Contains(err.Error(), "decode /n:") {
		t.Errorf("GetAs with Int of %q: %v", "x", err)
	}
	if _, err := s.Txn(ctx, SetOpAs("/n", "\xff", AnyVersion, String())); !errors.Is(err, ErrEncode) || !prefixedOnce(err) {
		t.Errorf("Txn with SetOpAs of invalid UTF-8: %v", err)
	}
}

func decodeErr[T any](c Codec[T]) func([]byte) error {
	return func(b []byte) error { _, err := c.Decode(b); return err }
}

func TestCodecWithOperations(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)

	// Values in, values out.
	cfg := JSON[codecTestConfig]()
	if _, err := CreateAs(ctx, s, "/app/config", codecTestConfig{Replicas: 3}, Persistent, cfg, CreateParents()); err != nil {
		t.Fatal(err)
	}
	v, stat, err := GetAs(ctx, s, "/app/config", cfg)
	if err != nil || v.Replicas != 3 {
		t.Fatalf("GetAs: %+v %v", v, err)
	}
	v.Replicas++
	if _, err := SetAs(ctx, s, "/app/config", v, stat.Version, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := SetAs(ctx, s, "/app/config", v, stat.Version, cfg); !errors.Is(err, ErrBadVersion) {
		t.Fatalf("SetAs at a stale version: %v, want ErrBadVersion", err)
	}
	if v, _, err := GetAs(ctx, s, "/app/config", cfg); err != nil || v.Replicas != 4 {
		t.Fatalf("GetAs after SetAs: %+v %v", v, err)
	}

	// Int is text, as another client or zkCli writes it.
	if _, err := s.Create(ctx, "/app/next", []byte("41"), Persistent); err != nil {
		t.Fatal(err)
	}
	n, stat, err := GetAs(ctx, s, "/app/next", Int())
	if err != nil || n != 41 {
		t.Fatalf("GetAs Int: %d %v", n, err)
	}
	if _, err := SetAs(ctx, s, "/app/next", n+1, stat.Version, Int()); err != nil {
		t.Fatal(err)
	}
	if data, _, _ := s.Get(ctx, "/app/next"); string(data) != "42" {
		t.Fatalf("raw data %q, want 42", data)
	}

	// Junk from another writer: an error that names the node, never a panic.
	for path, junk := range map[string]string{"/app/config": "<xml/>", "/app/next": "forty-three"} {
		if _, err := s.Set(ctx, path, []byte(junk), AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	_, stat, err = GetAs(ctx, s, "/app/config", cfg)
	var op *OpError
	if !errors.Is(err, ErrDecode) || !errors.As(err, &op) || op.Path != "/app/config" || op.Op != "decode" {
		t.Fatalf("GetAs of junk: %v, want an OpError decoding /app/config wrapping ErrDecode", err)
	}
	if stat == nil || stat.Version != 2 {
		t.Fatalf("GetAs of junk returned stat %+v, want the node's", stat)
	}
	if !strings.Contains(err.Error(), "/app/config") {
		t.Fatalf("error does not name the path: %v", err)
	}
	t.Log(err)
	if _, _, err := GetAs(ctx, s, "/app/next", Int()); !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "/app/next") {
		t.Fatalf("GetAs Int of junk: %v", err)
	} else {
		t.Log(err)
	}
	// The caller can repair it at the version it read.
	if _, err := SetAs(ctx, s, "/app/config", codecTestConfig{Replicas: 1}, stat.Version, cfg); err != nil {
		t.Fatal(err)
	}

	// Other errors are the operation's own.
	if _, _, err := GetAs(ctx, s, "/app/missing", String()); !errors.Is(err, ErrNoNode) || errors.Is(err, ErrDecode) {
		t.Fatalf("GetAs of a missing node: %v, want ErrNoNode", err)
	}
	if _, err := CreateAs(ctx, s, "/app/bad", "\xff", Persistent, String()); err == nil || !strings.Contains(err.Error(), "encode") {
		t.Fatalf("CreateAs of invalid UTF-8: %v, want an encode error", err)
	}
	if _, _, err := GetAs[string](ctx, s, "/app/next", nil); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("GetAs with a nil codec: %v, want ErrInvalidOption", err)
	}
	if _, err := SetAs[string](ctx, s, "/app/next", "x", AnyVersion, nil); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("SetAs with a nil codec: %v, want ErrInvalidOption", err)
	}
}

func TestCodecWithRecipeData(t *testing.T) {
	zkc := zktest.Shared(t)
	s := connect(t, zkc.Root(t))
	ctx := testCtx(t)
	type addr struct {
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	c := JSON[addr]()
	data, err := c.Encode(addr{"10.0.0.7", 8080})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Elect(ctx, "/leader", WithID("n1"), WithData(data))
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	p, err := s.Leader(ctx, "/leader")
	if err != nil {
		t.Fatal(err)
	}
	if a, err := c.Decode(p.Data); err != nil || a != (addr{"10.0.0.7", 8080}) {
		t.Fatalf("leader's data: %+v %v", a, err)
	}
}

func FuzzStringCodec(f *testing.F) {
	for _, s := range []string{"", "10.0.0.7:8080", "世界", "\xff", "a\x00b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzCodec(t, String(), data) })
}

func FuzzIntCodec(f *testing.F) {
	for _, s := range []string{"0", "-7", "+42", "007", "9223372036854775807", "9223372036854775808", "", " 1", "0x10", "1_000"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzCodec(t, Int(), data) })
}

func FuzzJSONCodec(f *testing.F) {
	for _, s := range []string{`{"replicas":3,"region":"eu","labels":{"a":"b"}}`, `null`, `{}`, `[]`, `{"replicas":1e3}`, `{"region":"\ud800"}`, `{"REPLICAS":2}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCodec(t, JSON[codecTestConfig](), data)
		fuzzCodec(t, JSON[any](), data)
	})
}

// fuzzCodec checks that Decode never panics, fails only with ErrDecode, and
// that a decoded value survives Encode and Decode unchanged.
func fuzzCodec[T any](t *testing.T, c Codec[T], data []byte) {
	v, err := c.Decode(data)
	if err != nil {
		if !errors.Is(err, ErrDecode) {
			t.Fatalf("Decode(%q): %v does not wrap ErrDecode", data, err)
		}
		return
	}
	enc, err := c.Encode(v)
	if err != nil {
		t.Fatalf("Encode(Decode(%q) = %#v): %v", data, v, err)
	}
	again, err := c.Decode(enc)
	if err != nil {
		t.Fatalf("Decode(Encode(Decode(%q))) = Decode(%q): %v", data, enc, err)
	}
	if !reflect.DeepEqual(again, v) {
		t.Fatalf("round trip of %q: %#v, then %#v", data, v, again)
	}
}
