package sessiond

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// reference is the wire form as encoding/json writes it from sessionJSON:
// what AppendJSON must produce byte for byte.
func reference(s *Session) []byte {
	j := sessionJSON{
		ID: s.ID, Subject: s.Subject, Metadata: s.Metadata, Policy: s.Policy,
		State: s.State, EndReason: s.EndReason,
		CreatedAt: s.CreatedAt.UTC(), LastActive: s.LastActive.UTC(),
		ExpiresAt: optTime(s.ExpiresAt), RotatedAt: optTime(s.RotatedAt), EndedAt: optTime(s.EndedAt),
		Disconn: optTime(s.DisconnectedAt), Connections: s.ConnCount,
		Version: s.Version, Generation: s.Generation,
	}
	if s.Device != (Device{}) {
		d := s.Device
		j.Device = &d
	}
	if s.IdleTimeout > 0 {
		j.IdleTimeout = s.IdleTimeout.String()
	}
	b, err := json.Marshal(j)
	if err != nil {
		panic(err)
	}
	return b
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func sample(subject, device, name string) *Session {
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
	return &Session{
		ID: "06h0c3x1j2k4m5n6p7q8r9s0t1", Subject: subject, Policy: "web",
		Device:   Device{ID: device, Type: "glasses", Name: name, IP: "2001:db8::1", UserAgent: "ua/1"},
		Metadata: json.RawMessage(`{"k":[1,"two"]}`), State: StateEnded, EndReason: EndRotatedReuse,
		CreatedAt: at, LastActive: at.Add(time.Second), ExpiresAt: at.Add(time.Hour), IdleTimeout: 90 * time.Second,
		RotatedAt: at.Add(time.Minute), EndedAt: at.Add(2 * time.Minute), DisconnectedAt: at.Add(3 * time.Minute),
		ConnCount: 2, Version: 7, Generation: 3,
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range []*Session{
		sample("alice", "g1", "Alice's glasses"),
		sample(`quote " backslash \ tab	 nl`+"\n", "<script>&", "\u2028\u2029 é 日本"),
		sample("bad utf8 \xff\xfe end", "\x01\x1f\x7f", ""),
		{ID: "x", Subject: "s", Policy: "p", State: StateActive, CreatedAt: time.Unix(0, 0), LastActive: time.Unix(1, 0)},
	} {
		got, want := s.AppendJSON(nil), reference(s)
		if !bytes.Equal(got, want) {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
		}
		var back Session
		if err := json.Unmarshal(got, &back); err != nil || back.ID != s.ID || !back.CreatedAt.Equal(s.CreatedAt) {
			t.Errorf("does not decode back: %v", err)
		}
	}
}

// FuzzAppendJSON: whatever the strings, the direct encoder writes what
// encoding/json writes, and valid JSON.
func FuzzAppendJSON(f *testing.F) {
	f.Add("alice", "g1", "name")
	f.Add("\xff", "<>&", "\u2028")
	f.Fuzz(func(t *testing.T, subject, device, name string) {
		s := sample(subject, device, name)
		got := s.AppendJSON(nil)
		if want := reference(s); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON %s", got)
		}
	})
}
