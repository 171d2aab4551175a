// Package migrations holds the numbered SQL migrations of the PostgreSQL
// schema, embedded into the binary and run by golang-migrate.
package migrations

import "embed"

// FS holds the *.up.sql and *.down.sql files.
//
//go:embed *.sql
var FS embed.FS
