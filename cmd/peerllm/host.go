package main

import (
	"context"
	"errors"
)

// runHost is being written; see the issue tracker.
func runHost(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
