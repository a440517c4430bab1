// Package store defines the one storage contract of Latchkey: the records, the per-area
// interfaces that make up Store, and the errors every backend returns.
package store
