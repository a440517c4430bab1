// Package storetest is the conformance suite that every store.Store backend must pass: CRUD,
// not-found and conflict semantics, cursor paging, project isolation, races and transactions.
package storetest
