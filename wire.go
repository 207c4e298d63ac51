package sessiond

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the session's wire form (as MarshalJSON writes it) to
// b. It writes the bytes directly: validations answer with a session each
// time, and reflection-based encoding was a third of a request's cost.
func (s *Session) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"subject":`...)
	b = appendString(b, s.Subject)
	if d := s.Device; d != (Device{}) {
		b = append(b, `,"device":{`...)
		first := true
		for _, f := range [...]struct{ k, v string }{{"id", d.ID}, {"type", d.Type}, {"name", d.Name}, {"ip", d.IP}, {"user_agent", d.UserAgent}} {
			if f.v == "" {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, f.k)
			b = append(b, ':')
			b = appendString(b, f.v)
		}
		b = append(b, '}')
	}
	if len(s.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = append(b, s.Metadata...) // compacted, valid JSON: checked at create
	}
	b = append(b, `,"policy":`...)
	b = appendString(b, s.Policy)
	b = append(b, `,"state":`...)
	b = appendString(b, s.State.String())
	if s.EndReason != "" {
		b = append(b, `,"end_reason":`...)
		b = appendString(b, string(s.EndReason))
	}
	b = appendTime(b, `,"created_at":`, s.CreatedAt)
	b = appendTime(b, `,"last_active_at":`, s.LastActive)
	if !s.ExpiresAt.IsZero() {
		b = appendTime(b, `,"expires_at":`, s.ExpiresAt)
	}
	if s.IdleTimeout > 0 {
		b = append(b, `,"idle_timeout":`...)
		b = appendString(b, s.IdleTimeout.String())
	}
	for _, t := range [...]struct {
		k string
		v time.Time
	}{{`,"rotated_at":`, s.RotatedAt}, {`,"ended_at":`, s.EndedAt}, {`,"disconnected_at":`, s.DisconnectedAt}, {`,"state_since":`, s.StateSince}} {
		if !t.v.IsZero() {
			b = appendTime(b, t.k, t.v)
		}
	}
	if s.ConnCount > 0 {
		b = append(b, `,"connections":`...)
		b = strconv.AppendInt(b, int64(s.ConnCount), 10)
	}
	if s.Cycle > 0 {
		b = append(b, `,"hibernations":`...)
		b = strconv.AppendUint(b, s.Cycle, 10)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, s.Version, 10)
	b = append(b, `,"generation":`...)
	b = strconv.AppendUint(b, s.Generation, 10)
	return append(b, '}')
}

func appendTime(b []byte, key string, t time.Time) []byte {
	b = append(b, key...)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does:
// quotes, backslashes, control characters, <, >, & and the line separators
// U+2028 and U+2029; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case utf8.RuneError:
				b = append(b, `\ufffd`...)
			default:
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
