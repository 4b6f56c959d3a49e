// Package fabric is the host link: the NATS subjects, message shapes and
// protocol version that orchestrator and host agents speak, the embedded NATS
// server with per-host credentials and permissions, and small client helpers.
// Both sides import it; it imports neither side.
package fabric

import (
	"time"

	"github.com/peerllm/peerllm/internal/engine"
)

// ProtocolVersion is carried in every Hello and Task. A side that receives a
// different major version refuses the message with a clear error.
const ProtocolVersion = 1

// Subjects. <host> is the host's id as issued by the orchestrator ([a-z0-9-]).
//
//	peerllm.host.<host>.task        orchestrator → host   Task
//	peerllm.host.<host>.cancel      orchestrator → host   Cancel
//	peerllm.host.<host>.ctl         orchestrator → host   Control (drain, ping)
//	peerllm.out.<host>.<task>       host → orchestrator   Chunk (token stream)
//	peerllm.hello.<host>            host → orchestrator   Hello (request/reply, answer HelloAck)
//	peerllm.hb.<host>               host → orchestrator   Heartbeat
//	_INBOX.<host>.>                 replies to a host's requests
//
// A host's NATS user may subscribe only to peerllm.host.<host>.> and
// _INBOX.<host>.>, and publish only to peerllm.out.<host>.>,
// peerllm.hello.<host> and peerllm.hb.<host>.
const (
	SubjectPrefix = "peerllm"
)

// TaskSubject is where host id receives tasks.
func TaskSubject(host string) string { return SubjectPrefix + ".host." + host + ".task" }

// CancelSubject is where host id receives cancellations.
func CancelSubject(host string) string { return SubjectPrefix + ".host." + host + ".cancel" }

// ControlSubject is where host id receives control messages.
func ControlSubject(host string) string { return SubjectPrefix + ".host." + host + ".ctl" }

// OutSubject is where host id publishes the chunks of task.
func OutSubject(host, task string) string { return SubjectPrefix + ".out." + host + "." + task }

// HelloSubject is where host id announces itself.
func HelloSubject(host string) string { return SubjectPrefix + ".hello." + host }

// HeartbeatSubject is where host id publishes heartbeats.
func HeartbeatSubject(host string) string { return SubjectPrefix + ".hb." + host }

// InboxPrefix is the reply-inbox prefix a host must use (nats.CustomInboxPrefix).
func InboxPrefix(host string) string { return "_INBOX." + host }

// ModelInfo is one model a host serves.
type ModelInfo struct {
	Name          string `json:"name"`
	Architecture  string `json:"architecture,omitempty"`
	ContextLength int    `json:"context_length"`
	Quantization  string `json:"quantization,omitempty"`
	Parameters    int64  `json:"parameters,omitempty"`
	Engine        string `json:"engine"` // "builtin", "openai", "ollama", "bench"
}

// Hardware is what a host declares about its machine.
type Hardware struct {
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memory_bytes"`
	GPU         string `json:"gpu,omitempty"`
}

// Hello is a host's announcement on connect and reconnect.
type Hello struct {
	Version  int         `json:"version"`
	HostID   string      `json:"host_id"`
	Agent    string      `json:"agent"` // agent build, e.g. "peerllm/0.1.0"
	Models   []ModelInfo `json:"models"`
	Hardware Hardware    `json:"hardware"`
	Region   string      `json:"region,omitempty"`
	Tier     string      `json:"tier,omitempty"`
	Capacity int         `json:"capacity"` // concurrent tasks
	// Throttle is the host's self-imposed cap in tokens per second (0 = none).
	Throttle float64 `json:"throttle,omitempty"`
}

// HelloAck is the orchestrator's answer to Hello.
type HelloAck struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// HeartbeatEvery is how often the host should send a Heartbeat.
	HeartbeatEvery time.Duration `json:"heartbeat_every"`
	// Now is the orchestrator's clock when it answered. A host measures its
	// clock's offset from it and applies it to Task.Deadline, so a home
	// machine whose clock is minutes off neither drops every task nor keeps
	// expired ones. Zero (an older orchestrator) means no correction.
	Now time.Time `json:"now,omitzero"`
}

// Heartbeat reports a host's load.
type Heartbeat struct {
	HostID       string    `json:"host_id"`
	Sent         time.Time `json:"sent"`
	InFlight     int       `json:"in_flight"`
	Capacity     int       `json:"capacity"`
	TokensPerSec float64   `json:"tokens_per_sec"` // recent, across tasks
	CPUUtil      float64   `json:"cpu_util"`       // 0..1
	GPUUtil      float64   `json:"gpu_util,omitempty"`
	Draining     bool      `json:"draining,omitempty"`
	// TasksCancelled counts tasks stopped by a Cancel since the agent started.
	TasksCancelled uint64 `json:"tasks_cancelled"`
}

// Task asks a host to generate one segment. It carries no consumer identity:
// no API key, account, client address or user field ever reaches a host.
type Task struct {
	Version int            `json:"version"`
	ID      string         `json:"id"` // unique per attempt; [a-zA-Z0-9]
	Model   string         `json:"model"`
	Request engine.Request `json:"request"`
	// Deadline is when the orchestrator stops caring; a host may drop the
	// task after it.
	Deadline time.Time `json:"deadline"`
}

// Cancel stops a task. Hosts acknowledge by sending a final Chunk with
// Error "cancelled" (or nothing, if the task had already ended).
type Cancel struct {
	TaskID string `json:"task_id"`
}

// Control is an orchestrator instruction to a host.
type Control struct {
	Op string `json:"op"` // "drain", "ping"
}

// Chunk is a piece of a task's output stream. Seq starts at 0 and increases by
// one per chunk so the orchestrator can detect loss. The last chunk of a task
// has Done set, or Error.
type Chunk struct {
	TaskID string       `json:"task_id"`
	Seq    int          `json:"seq"`
	Tokens []ChunkToken `json:"tokens,omitempty"`
	Done   bool         `json:"done,omitempty"`
	// FinishReason is set with Done: "stop" or "length".
	FinishReason string `json:"finish_reason,omitempty"`
	Usage        *Usage `json:"usage,omitempty"`
	// Error ends the task unsuccessfully; ErrorCode is machine-readable:
	// "context_length", "bad_request", "cancelled", "overloaded", "internal".
	Error     string `json:"error,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
}

// ChunkToken is one token in a Chunk.
type ChunkToken struct {
	ID int `json:"id"`
	// Text is always valid UTF-8. A token whose bytes do not complete a
	// character (byte-fallback pieces) has Partial set and empty Text; its
	// bytes arrive in the Text of the token that completes the character. On
	// failover the orchestrator continues after the last non-partial token.
	Text    string `json:"text"`
	Partial bool   `json:"partial,omitempty"`
	Index   int    `json:"index"`
}

// Usage is the host's count for one task.
type Usage struct {
	PromptTokens     int   `json:"prompt_tokens"`
	CachedTokens     int   `json:"cached_tokens"`
	CompletionTokens int   `json:"completion_tokens"`
	PromptEvalMicros int64 `json:"prompt_eval_us"`
	GenerationMicros int64 `json:"generation_us"`
}
