package sessiond

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"
)

// Defaults of Config's zero values.
const (
	// DefaultRetention is how long ended sessions stay readable.
	DefaultRetention = 24 * time.Hour
	// DefaultWorkers is how many deadlines are handled at once.
	DefaultWorkers = 32
	// DefaultDisposeWorkers is how many sessions are disposed of at once.
	DefaultDisposeWorkers = 16
	// DefaultSubscriberBuffer is how many events a subscriber may have
	// unread before it is dropped.
	DefaultSubscriberBuffer = 4096
	// DefaultMaxSubscribers caps the event subscriptions open at once.
	DefaultMaxSubscribers = 1024
)

// Config configures a Manager. Only Store is required; every other field
// documents what its zero value means.
type Config struct {
	// Store keeps the sessions. Required. The Manager does not close it.
	Store Store
	// Policies are the named policies sessions are created under. Empty
	// means two built-in ones: DefaultPolicy() and DevicePolicy().
	Policies []Policy
	// DefaultPolicy names the policy of creates that name none. Empty means
	// the first of Policies.
	DefaultPolicy string
	// Clock defaults to SystemClock.
	Clock Clock
	// Retention is how long ended sessions stay readable (Get, List) before
	// they are purged. 0 means DefaultRetention; negative purges at once.
	Retention time.Duration
	// MaxMetadata caps a session's metadata in bytes. 0 means DefaultMaxMetadata.
	MaxMetadata int
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Observer receives measurements; nil measures nothing.
	Observer Observer
	// Workers is how many deadlines are handled at once. 0 means
	// DefaultWorkers.
	Workers int
	// DisposeWorkers is how many ending sessions have their resources
	// disposed of at once. Disposal runs apart from deadlines and requests,
	// so disposers that hang until their DisposeTimeout hold up only these
	// workers. 0 means DefaultDisposeWorkers.
	DisposeWorkers int
	// SubscriberBuffer is how many events a subscriber may have unread; one
	// that falls this far behind is dropped. Queues grow to it only as
	// needed. 0 means DefaultSubscriberBuffer.
	SubscriberBuffer int
	// MaxSubscribers caps the event subscriptions open at once (server-sent
	// event streams among them); Subscribe refuses more with
	// ErrTooManySubscribers. 0 means DefaultMaxSubscribers.
	MaxSubscribers int

	// Node names this process among those sharing a store; WebSocket
	// connections are recorded with the node holding them. It must stay the
	// same across restarts: on Start, connections recorded on this node are
	// known to have died with the previous process. "" means the host name.
	Node string
	// ConnectPolicy is the policy of sessions that Connect creates for a
	// device. "" means the policy named "device" if there is one, else the
	// default policy.
	ConnectPolicy string
	// DisposeTimeout bounds each resource disposal and ending hook.
	// 0 means DefaultDisposeTimeout.
	DisposeTimeout time.Duration
	// LeaseTTL is how long this node's lease in the store lasts unless
	// renewed (every third of it): once another node sees it expired, it
	// treats the connections this node recorded as lost. 0 means
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// ValidationCache, if positive, keeps the sessions that validations
	// read for up to this long, so that a validation needs no store read
	// (validationCache says what keeps it right): off by default. A
	// session revoked through this engine is never validated from the
	// cache after the revoke returns; one changed through another engine
	// sharing the store may be, until that engine's event reaches this one
	// (tens of milliseconds on Redis), or for ValidationCache at most.
	ValidationCache time.Duration
	// ValidationCacheSize caps the sessions the cache holds. 0 means
	// DefaultValidationCacheSize.
	ValidationCacheSize int
	// EndingHooks run for every session that ends, after its resources are
	// disposed, each with DisposeTimeout; failures are logged and counted
	// and do not stop the session from ending.
	EndingHooks []func(ctx context.Context, s *Session) error
	// Runtime carries out hibernate and wake (docs/hibernation.md): a
	// transition completes when its call returns nil. Nil completes them
	// at once. It is also told (RuntimeDispose) when a session that
	// hibernates ends, as an ending hook.
	Runtime Runtime
}

// withDefaults returns cfg with every zero value that has a default
// replaced by it, and every policy with its own defaults filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxMetadata == 0 {
		cfg.MaxMetadata = DefaultMaxMetadata
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.DisposeWorkers == 0 {
		cfg.DisposeWorkers = DefaultDisposeWorkers
	}
	if cfg.SubscriberBuffer == 0 {
		cfg.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if cfg.MaxSubscribers == 0 {
		cfg.MaxSubscribers = DefaultMaxSubscribers
	}
	if cfg.DisposeTimeout == 0 {
		cfg.DisposeTimeout = DefaultDisposeTimeout
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.ValidationCacheSize == 0 {
		cfg.ValidationCacheSize = DefaultValidationCacheSize
	}
	if len(cfg.Policies) == 0 {
		cfg.Policies = []Policy{DefaultPolicy(), DevicePolicy()}
	}
	policies := make([]Policy, len(cfg.Policies))
	for i, p := range cfg.Policies {
		policies[i] = p.WithDefaults()
	}
	cfg.Policies = policies
	if cfg.DefaultPolicy == "" {
		cfg.DefaultPolicy = cfg.Policies[0].Name
	}
	if cfg.ConnectPolicy == "" {
		cfg.ConnectPolicy = cfg.DefaultPolicy
		for _, p := range cfg.Policies {
			if p.Name == "device" {
				cfg.ConnectPolicy = p.Name
			}
		}
	}
	return cfg
}

// Validate checks the configuration as a Manager would use it (zero values
// standing for their defaults) and the relations between its fields, with
// an error that names the field. It changes nothing.
func (cfg *Config) Validate() error {
	if cfg.Store == nil {
		return errors.New("sessiond: Config.Store is required")
	}
	c := cfg.withDefaults()
	for _, n := range []struct {
		field string
		v     int
	}{{"max_metadata", c.MaxMetadata}, {"workers", c.Workers}, {"dispose_workers", c.DisposeWorkers}, {"subscriber_buffer", c.SubscriberBuffer}, {"max_subscribers", c.MaxSubscribers}, {"validation_cache_size", c.ValidationCacheSize}} {
		if n.v < 0 {
			return Errorf(CodeInvalidArgument, n.field, "must not be negative (got %d)", n.v)
		}
	}
	if c.ValidationCache < 0 {
		return Errorf(CodeInvalidArgument, "validation_cache", "must not be negative (got %v)", c.ValidationCache)
	}
	if c.DisposeTimeout < 0 {
		return Errorf(CodeInvalidArgument, "dispose_timeout", "must not be negative (got %v)", c.DisposeTimeout)
	}
	if c.LeaseTTL < 3*time.Millisecond {
		return Errorf(CodeInvalidArgument, "lease_ttl", "must be at least 3ms (got %v)", c.LeaseTTL)
	}
	if c.Node == "" {
		return Errorf(CodeInvalidArgument, "node", "is required (the host name is unknown)")
	}
	names := make(map[string]bool, len(c.Policies))
	for i := range c.Policies {
		p := &c.Policies[i]
		if err := p.Validate(); err != nil {
			return err
		}
		if names[p.Name] {
			return Errorf(CodeInvalidArgument, "policies", "policy %q is defined twice", p.Name)
		}
		names[p.Name] = true
	}
	if !names[c.DefaultPolicy] {
		return Errorf(CodeInvalidArgument, "default_policy", "names no policy (%q)", c.DefaultPolicy)
	}
	if !names[c.ConnectPolicy] {
		return Errorf(CodeInvalidArgument, "connect_policy", "names no policy (%q)", c.ConnectPolicy)
	}
	return nil
}
