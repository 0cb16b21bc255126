package lighthouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Codec turns values of type T into node data and back, so that programs
// store values rather than bytes. Decode must not panic on any input and
// wraps ErrDecode when the data is not a T. The codecs here are safe for
// concurrent use.
//
// Use them with GetAs, SetAs and CreateAs, or around the recipes that carry
// raw data: encode before, decode after.
//
//	addr := lighthouse.JSON[Addr]()
//	data, err := addr.Encode(Addr{Host: "10.0.0.7", Port: 8080})
//	reg, err := sess.Register(ctx, "orders", lighthouse.Node{ID: "orders-1", Data: data})
//	...
//	for nodes := range members {
//		for _, n := range nodes {
//			a, err := addr.Decode(n.Data)
//			if err != nil {
//				continue // written by someone else: skip it, do not crash
//			}
//			...
//		}
//	}
//
// Election participant data works the same way: WithData with the encoded
// value when joining, Decode on Participant.Data after (Participants, Leader
// or Observe; a nil Data means the participant set none).
//
//	ch, err := sess.Elect(ctx, "/orders/leader", lighthouse.WithID("orders-1"), lighthouse.WithData(data))
//	...
//	leader, err := sess.Leader(ctx, "/orders/leader")
//	a, err := addr.Decode(leader.Data)
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(data []byte) (T, error)
}

// Bytes is the identity codec: node data as it is, what the raw operations
// take and return. Neither direction copies.
func Bytes() Codec[[]byte] { return bytesCodec{} }

type bytesCodec struct{}

func (bytesCodec) Encode(v []byte) ([]byte, error)    { return v, nil }
func (bytesCodec) Decode(data []byte) ([]byte, error) { return data, nil }

// String stores a string as its UTF-8 bytes, as zkCli and other clients
// show it. Encoding a string that is not valid UTF-8 fails, and so does
// decoding such data (ErrDecode). Empty data is the empty string.
func String() Codec[string] { return stringCodec{} }

type stringCodec struct{}

func (stringCodec) Encode(v string) ([]byte, error) {
	if !utf8.ValidString(v) {
		return nil, codecError("encode", fmt.Errorf("%w as a string: not valid UTF-8 (%s)", ErrEncode, quote(v)))
	}
	return []byte(v), nil
}

func (stringCodec) Decode(data []byte) (string, error) {
	if !utf8.Valid(data) {
		return "", codecError("decode", fmt.Errorf("%w as a string: not valid UTF-8 (%s)", ErrDecode, quote(data)))
	}
	return string(data), nil
}

// Int stores an int64 as decimal text ("42", "-7"), not as 8 binary bytes:
// zkCli, other languages' clients and people can read and write it as it is
// (`set /jobs/next 43`). Decode accepts what strconv.ParseInt accepts in base
// 10: an optional sign and digits, nothing around them (no spaces or
// newline), within int64's range; anything else, empty data included, is
// ErrDecode.
func Int() Codec[int64] { return intCodec{} }

type intCodec struct{}

func (intCodec) Encode(v int64) ([]byte, error) { return strconv.AppendInt(nil, v, 10), nil }

func (intCodec) Decode(data []byte) (int64, error) {
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		why := "not a decimal integer"
		if errors.Is(err, strconv.ErrRange) {
			why = "out of int64's range"
		}
		return 0, codecError("decode", fmt.Errorf("%w as an integer: %s is %s", ErrDecode, quote(data), why))
	}
	return n, nil
}

// JSON stores a T as JSON with encoding/json (so T's json tags apply).
// Decode fails with ErrDecode on data that is not JSON for a T, empty data
// included; unknown fields are ignored, as encoding/json does.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

func (jsonCodec[T]) Encode(v T) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, codecError("encode", fmt.Errorf("%w as JSON: %w", ErrEncode, err))
	}
	return data, nil
}

func (jsonCodec[T]) Decode(data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, codecError("decode", fmt.Errorf("%w as JSON %T: %w", ErrDecode, v, err))
	}
	return v, nil
}

// GetAs is Get decoding the node's data with c. If the data cannot be
// decoded, the error is an *OpError (Op "decode", Path the node) wrapping
// ErrDecode, and the node's stat is returned with it, so the caller can
// overwrite the node with SetAs at that version.
func GetAs[T any](ctx context.Context, s *Session, path string, c Codec[T]) (T, *Stat, error) {
	var zero T
	if c == nil {
		return zero, nil, &OpError{Op: "get", Path: path, Err: fmt.Errorf("%w: nil codec", ErrInvalidOption)}
	}
	data, stat, err := s.Get(ctx, path)
	if err != nil {
		return zero, nil, err
	}
	v, err := c.Decode(data)
	if err != nil {
		return zero, stat, &OpError{Op: "decode", Path: path, Err: codecCause(err, ErrDecode)}
	}
	return v, stat, nil
}

// SetAs is Set with v encoded by c: it replaces the node's data if its
// version is version (AnyVersion for any) and returns the new stat. An
// encoding error is an *OpError with Op "encode".
func SetAs[T any](ctx context.Context, s *Session, path string, v T, version int32, c Codec[T]) (*Stat, error) {
	data, err := encode(path, v, c)
	if err != nil {
		return nil, err
	}
	return s.Set(ctx, path, data, version)
}

// CreateAs is Create with v encoded by c as the node's data.
func CreateAs[T any](ctx context.Context, s *Session, path string, v T, mode CreateMode, c Codec[T], opts ...CreateOption) (string, error) {
	data, err := encode(path, v, c)
	if err != nil {
		return "", err
	}
	return s.Create(ctx, path, data, mode, opts...)
}

func encode[T any](path string, v T, c Codec[T]) ([]byte, error) {
	if c == nil {
		return nil, &OpError{Op: "encode", Path: path, Err: fmt.Errorf("%w: nil codec", ErrInvalidOption)}
	}
	data, err := c.Encode(v)
	if err != nil {
		return nil, &OpError{Op: "encode", Path: path, Err: codecCause(err, ErrEncode)}
	}
	return data, nil
}

// codecError is the error of a Codec's op ("encode" or "decode") called by
// the caller directly, with the library's prefix.
func codecError(op string, err error) error { return &OpError{Op: op, Err: err} }

// codecCause is a Codec's error, to be wrapped once more: the cause of an
// *OpError, made to match sentinel (ErrDecode, ErrEncode) if it does not.
func codecCause(err, sentinel error) error {
	if oe, ok := err.(*OpError); ok {
		err = oe.Err
	}
	if !errors.Is(err, sentinel) {
		err = fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}
