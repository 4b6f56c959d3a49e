package dispatch

import "maps"

// snapshot is the outcome so far, for Request.Progress: the tokens delivered
// up to the last commit and a copy of the tokens each host generated.
func (g *gen) snapshot() Outcome {
	o := g.out
	o.CompletionTokens = g.commit
	o.HostTokens = maps.Clone(g.out.HostTokens)
	return o
}
