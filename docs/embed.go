// Package docs holds Latchkey's user documentation and embeds the OpenAPI document that the
// server publishes at GET /api/v1/openapi.json.
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of every route the server registers. A test in package
// app checks that the two agree in both directions.
//
//go:embed openapi.json
var OpenAPI []byte
