package main

import (
	"context"
	"errors"
)

// runEval is being written; see the issue tracker.
func runEval(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
