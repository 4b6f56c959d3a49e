package main

import (
	"context"
	"errors"
)

// runDemo is being written; see the issue tracker.
func runDemo(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
