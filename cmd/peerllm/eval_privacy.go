package main

import (
	"context"
	"errors"
)

// runEvalPrivacy is being written; see the issue tracker.
func runEvalPrivacy(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
