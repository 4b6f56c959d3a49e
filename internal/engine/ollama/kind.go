package ollama

// Kind names the engine in a host's Hello ("ollama"): the dispatcher
// continues an answer on it with text, since it cannot take token ids.
func (e *Engine) Kind() string { return "ollama" }
