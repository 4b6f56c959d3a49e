package fabric

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrVersion means a Hello or Task carries a protocol version this side does
// not speak. The receiver refuses the message.
var ErrVersion = errors.New("unsupported host-link protocol version")

// Encode marshals a host-link message (Hello, HelloAck, Heartbeat, Task,
// Cancel, Control, Chunk) for publishing. Hello and Task with a zero Version
// are stamped with ProtocolVersion.
func Encode(v any) ([]byte, error) {
	switch m := v.(type) {
	case *Hello:
		if m.Version == 0 {
			c := *m
			c.Version = ProtocolVersion
			v = &c
		}
	case Hello:
		if m.Version == 0 {
			m.Version = ProtocolVersion
		}
		v = m
	case *Task:
		if m.Version == 0 {
			c := *m
			c.Version = ProtocolVersion
			v = &c
		}
	case Task:
		if m.Version == 0 {
			m.Version = ProtocolVersion
		}
		v = m
	case *Chunk:
		return AppendChunk(nil, m), nil
	case Chunk:
		return AppendChunk(nil, &m), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// Decode unmarshals a host-link message into v (a pointer). Unknown fields are
// ignored so that a newer minor revision can add fields. For *Hello and *Task
// a version other than ProtocolVersion returns an error wrapping ErrVersion;
// v is still filled so the caller can name the peer in its answer.
func Decode(data []byte, v any) error {
	if c, ok := v.(*Chunk); ok {
		if err := decodeChunk(data, c); err != nil {
			return fmt.Errorf("decode %T: %w", v, err)
		}
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	var got int
	switch m := v.(type) {
	case *Hello:
		got = m.Version
	case *Task:
		got = m.Version
	default:
		return nil
	}
	if got != ProtocolVersion {
		return fmt.Errorf("%T version %d, want %d: %w", v, got, ProtocolVersion, ErrVersion)
	}
	return nil
}
