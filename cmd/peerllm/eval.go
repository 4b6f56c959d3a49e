package main

import (
	"context"
)

// runEval dispatches "eval safety" and "eval privacy".
func runEval(ctx context.Context, args []string) error {
	if len(args) > 0 && isHelp(args[0]) {
		return printHelp("usage: peerllm eval safety|privacy --data FILE")
	}
	if len(args) == 0 {
		return usagef("usage: peerllm eval safety|privacy --data FILE")
	}
	switch args[0] {
	case "safety":
		return runEvalSafety(ctx, args[1:])
	case "privacy":
		return runEvalPrivacy(ctx, args[1:])
	}
	return usagef("unknown eval %q (want safety or privacy)", args[0])
}
