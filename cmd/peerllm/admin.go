package main

import (
	"context"
	"errors"
)

// runAdmin is being written; see the issue tracker.
func runAdmin(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
