// Package docs holds documentation files that the code ships as they are,
// so that each is written once: sessiond.example.yaml is what
// `sessiond config init` writes, openapi.yaml what the server serves at
// GET /v1/openapi.yaml.
package docs

import _ "embed" // for go:embed

// ExampleConfig is sessiond.example.yaml: every key of the config file,
// with its default where it has one, commented.
//
//go:embed sessiond.example.yaml
var ExampleConfig string

// OpenAPI is openapi.yaml: the REST API's OpenAPI 3.1 document.
//
//go:embed openapi.yaml
var OpenAPI string
