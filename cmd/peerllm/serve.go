package main

import (
	"context"
	"errors"
)

// runServe is being written; see the issue tracker.
func runServe(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
