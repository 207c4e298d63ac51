// Package wait holds the one way this module pauses: for a duration, or
// until its context ends, whichever comes first.
package wait

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done: then it returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
