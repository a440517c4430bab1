// Command latchkey is the Latchkey authentication server and its administration commands.
//
// Usage:
//
//	latchkey serve [flags]            run the server
//	latchkey migrate [flags]          bring the database schema up to date
//	latchkey project create|list|update|rotate-secret [flags]
//	latchkey version
//
// Every command reads the same configuration (flags over LATCHKEY_* environment variables) and
// so works on the same database as serve.
package main
