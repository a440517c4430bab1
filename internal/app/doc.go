// Package app is the only place where Latchkey is wired together: configuration, store,
// services, routes and the HTTP server, with start and graceful stop.
package app
