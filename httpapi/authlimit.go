package httpapi

import "time"

// Defaults of the limit on failed API key attempts.
const (
	DefaultAuthFailureLimit     = 10
	DefaultAuthFailureWindow    = time.Minute
	DefaultAuthFailureAddresses = 10_000
)
