package main

import (
	"context"
	"errors"
)

// runGenerate is being written; see the issue tracker.
func runGenerate(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
