// Package docs holds documentation files that the code ships as they are,
// so that each is written once: sessiond.example.yaml is what
// `sessiond config init` writes.
package docs

import _ "embed" // for go:embed

// ExampleConfig is sessiond.example.yaml: every key of the config file,
// with its default where it has one, commented.
//
//go:embed sessiond.example.yaml
var ExampleConfig string
