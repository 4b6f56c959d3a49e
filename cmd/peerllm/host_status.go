package main

import (
	"context"
	"errors"
)

// runHostStatus is `peerllm host status` (a host's earnings and strikes); it
// is being written by its owner, who replaces this placeholder.
func runHostStatus(ctx context.Context, args []string) error {
	return errors.New("host status is not available in this build yet")
}
