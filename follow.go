package sessiond

import (
	"context"
	"time"
)

// AwaitEvents returns once st's log may hold events that after is not
// past: as soon as the store says its log grew (EventWaiter), or once poll
// has passed on the clock c for a store that cannot say, or when ctx is
// done. Readers that follow the log apart from the engine (the history
// sink, the webhook notifier) wait with it between reads.
func AwaitEvents(ctx context.Context, c Clock, st Store, after Cursor, poll time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := c.AfterFunc(poll, cancel)
	defer t.Stop()
	if w, ok := st.(EventWaiter); ok {
		_, _ = w.WaitEvents(ctx, after)
		return
	}
	<-ctx.Done()
}
