package main

import (
	"context"
	"errors"
)

// runSafety is being written; see the issue tracker.
func runSafety(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
