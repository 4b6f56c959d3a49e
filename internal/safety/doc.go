// Package safety owns PeerLLM's content screen: the built-in classifier
// (normalisation, lexicons with context rules, intent patterns and a linear
// model over hashed word and character n-grams whose weights ship embedded),
// the policy (per-category thresholds and the unsure band), the windowed
// output screen for streamed answers, and optional AI moderation clients
// (OpenAI /v1/moderations and Llama-Guard-style chat endpoints) consulted only
// when the built-in score is unsure.
//
// The orchestrator's request path (httpapi, pipeline stages) and cmd/peerllm
// import it. The host side (internal/agent, internal/engine/...) must not: the
// raw prompt is screened inside the orchestrator and never leaves it. Nothing
// in this package logs or stores the text it screens.
package safety
