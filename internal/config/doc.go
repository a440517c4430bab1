// Package config holds the bootstrap settings of a Latchkey process (where to listen, which
// database, the public URL, logging) and reads them from the environment, then from flags.
package config
