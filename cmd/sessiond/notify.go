package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/metrics"
	"github.com/sessiond/sessiond/webhook"
)

// WebhookConfig is a notification endpoint, as written under webhooks:
// in the config file (docs/webhooks.md).
type WebhookConfig struct {
	// Name names the endpoint in metrics and logs, and its cursor in the
	// store: letters, digits and . _ : - (renaming it starts it afresh).
	Name string `yaml:"name"`
	// URL is POSTed the notifications: http or https.
	URL string `yaml:"url"`
	// Secret, "whsec_<base64>" as Standard Webhooks libraries take it,
	// signs them. Required.
	Secret string `yaml:"secret"`
	// Events are the event types sent: created, ended, hibernated, ...
	Events []string `yaml:"events"`
	// MaxAttempts is how many times a notification is tried before it is
	// dropped as a dead letter: 5.
	MaxAttempts int `yaml:"max_attempts"`
}

// checkWebhooks checks webhooks: at most webhook.MaxEndpoints, each valid
// (webhook.Endpoint.Validate), names unique.
func (cfg *Config) checkWebhooks() error {
	_, err := cfg.webhookEndpoints()
	return err
}

// webhookEndpoints returns the configured endpoints, checked.
func (cfg *Config) webhookEndpoints() ([]webhook.Endpoint, error) {
	if len(cfg.Webhooks) > webhook.MaxEndpoints {
		return nil, fmt.Errorf("webhooks: at most %d endpoints (got %d)", webhook.MaxEndpoints, len(cfg.Webhooks))
	}
	var out []webhook.Endpoint
	seen := map[string]bool{}
	for i, w := range cfg.Webhooks {
		key := fmt.Sprintf("webhooks[%d]", i)
		if w.Name != "" {
			key += fmt.Sprintf(" (%s)", w.Name)
		}
		if w.Secret == "" {
			return nil, fmt.Errorf(`%s: secret: required: "whsec_" and 24 to 64 bytes in base64 (e.g. whsec_$(openssl rand -base64 32))`, key)
		}
		secret, err := webhook.ParseSecret(w.Secret)
		if err != nil {
			return nil, fmt.Errorf("%s: secret: %w", key, err)
		}
		ep := webhook.Endpoint{Name: w.Name, URL: w.URL, Secret: secret, MaxAttempts: w.MaxAttempts}
		for _, t := range w.Events {
			ep.Events = append(ep.Events, sessiond.EventType(t))
		}
		if err := ep.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("%s: name: another endpoint is named %q", key, w.Name)
		}
		seen[w.Name] = true
		out = append(out, ep)
	}
	return out, nil
}

// fillWebhookDefaults puts the defaults serve uses in the endpoints, for
// `sessiond config`.
func (cfg *Config) fillWebhookDefaults() {
	for i := range cfg.Webhooks {
		if cfg.Webhooks[i].MaxAttempts == 0 {
			cfg.Webhooks[i].MaxAttempts = webhook.DefaultAttempts
		}
	}
}

// redactedWebhooks is the endpoints as `sessiond config` prints them: the
// secrets hidden, and the URLs' passwords.
func redactedWebhooks(in []WebhookConfig) []WebhookConfig {
	if in == nil {
		return nil
	}
	out := make([]WebhookConfig, len(in))
	for i, w := range in {
		w.URL = redactDSN(w.URL)
		if w.Secret != "" {
			w.Secret = "(set; hidden)"
		}
		out[i] = w
	}
	return out
}

// notifier runs the notification webhooks in the background until close.
type notifier struct {
	n      *webhook.Notifier
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// startNotifier starts delivering to the configured endpoints, as the
// node cfg.Node (of those sharing the store, one delivers per endpoint).
func startNotifier(cfg *Config, st sessiond.Store, log *slog.Logger) (*notifier, error) {
	eps, err := cfg.webhookEndpoints()
	if err != nil {
		return nil, err
	}
	n, err := webhook.NewNotifier(webhook.NotifierOptions{Store: st, Endpoints: eps, Owner: cfg.Node, Logger: log})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	nt := &notifier{n: n, cancel: cancel}
	nt.done.Go(func() {
		if err := n.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("webhooks: the notifier stopped", "err", err)
		}
	})
	names := make([]string, len(eps))
	for i, ep := range eps {
		names[i] = ep.Name
	}
	log.Info("webhooks: notifying endpoints of the event log", "endpoints", names, "node", cfg.Node)
	return nt, nil
}

// close stops the notifier: what was delivered is committed and the
// claims released, so that another node takes over at once.
func (nt *notifier) close() {
	nt.cancel()
	nt.done.Wait()
}

// stats are the endpoints' counts, for the metrics.
func (nt *notifier) stats() []metrics.WebhookStats {
	st := nt.n.Stats()
	out := make([]metrics.WebhookStats, len(st))
	for i, s := range st {
		out[i] = metrics.WebhookStats{Endpoint: s.Endpoint, Delivered: s.Delivered, Rejected: s.Rejected, Failed: s.Failed,
			Retries: s.Retries, DeadLetters: s.DeadLetters, Gaps: s.Gaps, StoreErrors: s.StoreErrors, Delivering: s.Delivering}
	}
	return out
}
