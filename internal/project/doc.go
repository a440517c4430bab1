// Package project manages projects (applications): their client ids, their hashed client
// secrets and their typed settings document, and authenticates the clients that present them.
package project
