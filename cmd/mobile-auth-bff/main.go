// Command mobile-auth-bff is the OAuth 2.0 server and backend-for-frontend
// of the platform's mobile apps.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mobile-auth-bff:", err)
		os.Exit(1)
	}
}
