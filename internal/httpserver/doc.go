// Package httpserver is Latchkey's HTTP layer: the router, the middleware every route shares
// (request ids, logging, metrics, client authentication) and the one mapping of errors to the
// documented JSON shape.
package httpserver
