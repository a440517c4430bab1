// Package projecthttp serves a project's own management API (read and change the project and
// its settings) and its public configuration.
package projecthttp
