package main

import (
	"context"
	"errors"
)

// runBench is being written; see the issue tracker.
func runBench(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
