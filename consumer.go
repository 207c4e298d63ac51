package sessiond

import (
	"errors"
	"time"
)

// ErrConsumerClaimed refuses a claim of a consumer of the event log that
// another owner holds, and a commit by an owner that no longer holds it
// (Consumers). Errors that match it may say who holds the claim.
var ErrConsumerClaimed = errors.New("sessiond: the event log's consumer is claimed by another owner")

// MaxConsumerName bounds a consumer's name, in bytes; MaxConsumerOwner
// bounds an owner's.
const (
	MaxConsumerName  = 128
	MaxConsumerOwner = 256
)

// CheckConsumer returns an error matching ErrInvalidArgument unless name
// may name a consumer of the event log (Consumers): 1 to MaxConsumerName
// bytes of ASCII letters, digits and . _ : - (so that it fits in a key of
// every store, a Redis Cluster hash tag included, and in a log line).
func CheckConsumer(name string) error {
	if name == "" || len(name) > MaxConsumerName {
		return Errorf(CodeInvalidArgument, "consumer", "a consumer's name has 1 to %d bytes (got %d)", MaxConsumerName, len(name))
	}
	for i := range len(name) {
		if !consumerByte(name[i]) {
			return Errorf(CodeInvalidArgument, "consumer", "%q: a consumer's name holds ASCII letters, digits and . _ : - only", name)
		}
	}
	return nil
}

func consumerByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '.' || c == '_' || c == ':' || c == '-'
}

// CheckConsumerCall returns the error matching ErrInvalidArgument that a
// Consumers store gives for a call with these arguments, or nil: the name
// (CheckConsumer), the owner (1 to MaxConsumerOwner bytes), the cursor
// (not FromNow, no partition past the store's partitions) and the ttl
// (positive to claim, not negative to commit). Every store checks with it.
func CheckConsumerCall(name, owner string, c Cursor, partitions int, ttl time.Duration, claim bool) error {
	if err := CheckConsumer(name); err != nil {
		return err
	}
	if owner == "" || len(owner) > MaxConsumerOwner {
		return Errorf(CodeInvalidArgument, "owner", "a consumer's owner has 1 to %d bytes (got %d)", MaxConsumerOwner, len(owner))
	}
	if c.IsFromNow() {
		return Errorf(CodeInvalidArgument, "cursor", "a consumer's cursor is a position in the log, not FromNow")
	}
	if err := c.Within(partitions); err != nil {
		return err
	}
	if claim && ttl <= 0 {
		return Errorf(CodeInvalidArgument, "ttl", "a claim lasts a positive duration (got %v)", ttl)
	}
	if ttl < 0 {
		return Errorf(CodeInvalidArgument, "ttl", "a commit extends the claim by a duration that is not negative; 0 releases it (got %v)", ttl)
	}
	return nil
}
