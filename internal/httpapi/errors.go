package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/peerllm/peerllm/internal/auth"
	"github.com/peerllm/peerllm/internal/pipeline"
)

// Errors a Backend returns (wrapped) so the API can answer with the right
// status. The orchestrator's backend adapter wraps the dispatcher's errors
// with these.
var (
	// ErrModelNotFound: no host has ever served the model (404).
	ErrModelNotFound = errors.New("model not found")
	// ErrContextLength: the prompt does not fit any host's context (400).
	ErrContextLength = errors.New("prompt exceeds the context length of every host serving the model")
	// ErrNoHost: the model is known but no host can take the request now (503).
	ErrNoHost = errors.New("no host available for the model")
	// ErrOverloaded: every host serving the model is at capacity (429).
	ErrOverloaded = errors.New("all hosts serving the model are at capacity")
)

// Error is an API error as the consumer sees it: an HTTP status and
// OpenAI's error object. Handlers return it for input errors; anything else
// goes through errorFor.
type Error struct {
	Status     int    `json:"-"`
	Message    string `json:"message"`
	Type       string `json:"type"`
	Param      any    `json:"param"` // string or null
	Code       any    `json:"code"`  // string or null
	RetryAfter int    `json:"-"`     // seconds; 0 means no Retry-After header
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message) }

// badParam is a 400 naming the parameter at fault.
func badParam(param, format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Code: "invalid_value", Message: fmt.Sprintf(format, a...)}
}

// badRequest is a 400 not tied to one parameter.
func badRequest(code, format string, a ...any) *Error {
	var c any
	if code != "" {
		c = code
	}
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: c, Message: fmt.Sprintf(format, a...)}
}

// errorFor is the one place that maps an error to what the consumer sees.
// The returned Error's Message never carries internal error text.
func errorFor(err error, promptParam string) *Error {
	var param any // JSON null unless the caller names the prompt parameter
	if promptParam != "" {
		param = promptParam
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var refusal *pipeline.Refusal
	if errors.As(err, &refusal) {
		msg := refusal.Message
		if len(refusal.Categories) > 0 {
			msg += " (categories: " + strings.Join(refusal.Categories, ", ") + ")"
		}
		code := refusal.Code
		if code == "" {
			code = "content_policy_violation"
		}
		status, typ := refusal.Status, "invalid_request_error"
		if status == 0 {
			status = http.StatusBadRequest
		}
		if status == http.StatusPaymentRequired {
			typ, param = "insufficient_quota", nil
		}
		return &Error{Status: status, Type: typ, Param: param, Code: code, Message: msg}
	}
	switch {
	case errors.Is(err, auth.ErrInvalidKey):
		return &Error{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key", Message: "Incorrect or missing API key. Pass it as 'Authorization: Bearer <key>'."}
	case errors.Is(err, ErrModelNotFound):
		return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Param: "model", Code: "model_not_found", Message: "The model does not exist or no host serves it. GET /v1/models lists the models served now."}
	case errors.Is(err, ErrContextLength):
		return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Code: "context_length_exceeded", Message: "The prompt is longer than the context window of every host serving this model."}
	case errors.Is(err, ErrOverloaded):
		return &Error{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "overloaded", Message: "Every host serving this model is busy. Retry after the time in Retry-After.", RetryAfter: 2}
	case errors.Is(err, ErrNoHost):
		return &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "no_host_available", Message: "No host can serve this model right now. Retry after the time in Retry-After.", RetryAfter: 5}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusGatewayTimeout, Type: "server_error", Code: "timeout", Message: "The request timed out."}
	case errors.Is(err, context.Canceled):
		// The consumer went away; nobody reads this.
		return &Error{Status: 499, Type: "server_error", Code: "cancelled", Message: "The request was cancelled."}
	}
	return &Error{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal_error", Message: "The server had an error while processing the request."}
}

// writeError writes e as an OpenAI error response.
func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(struct {
		Error *Error `json:"error"`
	}{e})
}
