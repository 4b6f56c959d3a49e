package main

import (
	"context"
	"errors"
)

// runPrivacy is being written; see the issue tracker.
func runPrivacy(ctx context.Context, args []string) error {
	return errors.New("not available in this build yet")
}
