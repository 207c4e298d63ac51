package sessiond

import (
	"errors"
	"strings"
	"testing"
)

func TestCursorText(t *testing.T) {
	for _, tc := range []struct {
		c    Cursor
		want string
	}{
		{Cursor{}, "0"},
		{CursorOf(42), "42"},
		{CursorOf(42, 0, 0), "42"}, // trailing partitions without events
		{CursorOf(0, 7, 0, 3), "0.7.0.3"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%v.String() = %q, want %q", tc.c.seqs, got, tc.want)
		}
		back, err := ParseCursor(tc.want)
		if err != nil || back.Behind(tc.c) || tc.c.Behind(back) {
			t.Errorf("ParseCursor(%q) = %v, %v; want %v back", tc.want, back.seqs, err, tc.c.seqs)
		}
	}
	for _, bad := range []string{"", "x", "1..2", ".1", "1.", "-1", "01", "1.02", "18446744073709551616", strings.Repeat("1.", MaxCursorPartitions) + "1"} {
		if _, err := ParseCursor(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseCursor(%q) = %v; want invalid_argument", bad, err)
		}
	}
}

func TestCursorMoves(t *testing.T) {
	var c Cursor
	e := Event{Partition: 2, Seq: 5}
	if c.Covers(e) {
		t.Fatal("the zero cursor covers an event")
	}
	c2 := c.After(e)
	if !c2.Covers(e) || c2.Seq(2) != 5 || c.Seq(2) != 0 {
		t.Fatalf("After: %v from %v; the original must not change", c2.seqs, c.seqs)
	}
	if !c.Behind(c2) || c2.Behind(c) {
		t.Fatal("Behind is wrong")
	}
	m := CursorOf(9, 0, 1).Max(c2)
	if m.String() != "9.0.5" {
		t.Fatalf("Max = %s, want 9.0.5", m)
	}
	if err := CursorOf(1, 0, 0).Within(1); err != nil {
		t.Fatalf("a cursor with empty trailing partitions: %v", err)
	}
	if err := CursorOf(1, 0, 3).Within(2); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a cursor past partition 2 within 2 partitions: %v", err)
	}
}

// FuzzParseCursor: Last-Event-ID and ?after= come from clients. Whatever
// parses prints back to a text that parses to the same position.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"0", "42", "1.2.3", "0.0.0.9", "", "01", "1..", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("ParseCursor(%q) = %v; want invalid_argument", s, err)
			}
			return
		}
		back, err := ParseCursor(c.String())
		if err != nil || back.Behind(c) || c.Behind(back) {
			t.Fatalf("ParseCursor(%q).String() = %q parses to %v, %v", s, c.String(), back.seqs, err)
		}
	})
}

func TestCursorMissed(t *testing.T) {
	c := CursorOf(3, 10)
	for _, tc := range []struct {
		e    Event
		want uint64
	}{
		{Event{Partition: 0, Seq: 4}, 0},  // the next one
		{Event{Partition: 0, Seq: 2}, 0},  // covered
		{Event{Partition: 0, Seq: 7}, 3},  // 4, 5, 6 gone
		{Event{Partition: 1, Seq: 12}, 1}, // 11 gone
		{Event{Partition: 5, Seq: 1}, 0},  // a partition the cursor does not name
		{Event{Partition: 5, Seq: 3}, 2},
	} {
		if got := c.Missed(tc.e); got != tc.want {
			t.Errorf("CursorOf(3, 10).Missed(%d/%d) = %d, want %d", tc.e.Partition, tc.e.Seq, got, tc.want)
		}
	}
}
