package openai

// Kind names the engine in a host's Hello ("openai"): the dispatcher
// continues an answer on it with text, since it cannot take token ids.
func (e *Engine) Kind() string { return "openai" }
