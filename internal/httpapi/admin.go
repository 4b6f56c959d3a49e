package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peerllm/peerllm/internal/auth"
)

// ErrHostNotFound is what a HostAdmin returns (wrapped) for an unknown id.
var ErrHostNotFound = errors.New("host not found")

// HostSpec describes a host to register.
type HostSpec struct {
	Name   string `json:"name"`
	Owner  string `json:"owner"`
	Region string `json:"region"`
	Tier   string `json:"tier"`
}

// HostInfo is a registered host as the admin API shows it.
type HostInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Region    string    `json:"region"`
	Tier      string    `json:"tier"`
	Status    string    `json:"status"` // e.g. "active", "suspended", "banned"
	Connected bool      `json:"connected"`
	Models    []string  `json:"models,omitempty"`
	Strikes   int       `json:"strikes"`
	CreatedAt time.Time `json:"created_at"`
}

// StrikeInfo is one strike against a host.
type StrikeInfo struct {
	HostID string    `json:"host_id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Credentials is what a host agent needs to connect (peerllm host
// --credentials FILE reads this JSON).
type Credentials struct {
	URL    string `json:"url"`
	HostID string `json:"host_id"`
	Secret string `json:"secret"`
}

// HostAdmin manages hosts. The orchestrator adapts the registry to it.
type HostAdmin interface {
	AddHost(ctx context.Context, spec HostSpec) (HostInfo, string, error)
	ListHosts(ctx context.Context) ([]HostInfo, error)
	RemoveHost(ctx context.Context, id string) error
	// RotateSecret issues a new secret for host id; the old one stops working.
	RotateSecret(ctx context.Context, id string) (string, error)
	Strikes(ctx context.Context, hostID string) ([]StrikeInfo, error) // "" means all hosts
	ClearStrikes(ctx context.Context, hostID string) error
}

// KeyAdmin manages consumer API keys (auth.Keys implements it).
type KeyAdmin interface {
	Create(ctx context.Context, name, account, secret string) (auth.Key, string, error)
	List(ctx context.Context) ([]auth.Key, error)
	Revoke(ctx context.Context, id string) error
}

// Admin is the admin API under /admin/v1, guarded by the admin token.
type Admin struct {
	Token   *auth.AdminToken
	Keys    KeyAdmin
	Hosts   HostAdmin // nil: host routes answer 501
	HostURL string    // the NATS URL put in host credentials
}

func (a *Admin) routes(mux *http.ServeMux, s *Server) {
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, a.guard(s, f))
	}
	h("POST /admin/v1/keys", a.createKey)
	h("GET /admin/v1/keys", a.listKeys)
	h("DELETE /admin/v1/keys/{id}", a.revokeKey)
	h("POST /admin/v1/hosts", a.addHost)
	h("GET /admin/v1/hosts", a.listHosts)
	h("DELETE /admin/v1/hosts/{id}", a.removeHost)
	h("POST /admin/v1/hosts/{id}/credentials", a.rotateHost)
	h("GET /admin/v1/strikes", a.listStrikes)
	h("DELETE /admin/v1/strikes/{host}", a.clearStrikes)
}

var errNoHostAdmin = &Error{Status: http.StatusNotImplemented, Type: "server_error", Code: "not_implemented", Message: "Host management is not available on this server."}

// guard checks the admin token and maps a handler's error to a response.
func (a *Admin) guard(s *Server, f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Token.Check(auth.BearerToken(r.Header.Get("Authorization"))) {
			writeError(w, &Error{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_admin_token", Message: "Incorrect or missing admin token."})
			return
		}
		if err := f(w, r); err != nil {
			var e *Error
			switch {
			case errors.As(err, &e):
			case errors.Is(err, auth.ErrNotFound), errors.Is(err, ErrHostNotFound):
				e = &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Message: "No such id."}
			case errors.Is(err, auth.ErrBadKey):
				e = badParam("key", "%s", auth.ErrBadKey.Error())
			case errors.Is(err, auth.ErrKeyExists):
				e = &Error{Status: http.StatusConflict, Type: "invalid_request_error", Param: "key", Code: "already_exists", Message: "An API key with this secret already exists."}
			default:
				s.log.Error("admin request failed", "request_id", requestID(r.Context()), "path", r.URL.Path, "err", err)
				e = errorFor(err, "")
			}
			writeError(w, e)
		}
	})
}

func decodeAdmin(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 64<<10))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large", Message: "The request body is larger than the server accepts."}
	case err != nil:
		return badRequest("", "Could not read the request body.")
	case !utf8.Valid(body):
		// encoding/json would store U+FFFD in place of the bad bytes.
		return badRequest("invalid_encoding", "The request body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil && dec.More():
		return badRequest("", "The request body holds more than one JSON value.")
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return badRequest("", "The request body is empty; send a JSON object.")
	case errors.As(err, &te) && te.Field == "":
		return badRequest("", "The request body must be a JSON object.")
	case errors.As(err, &te):
		return badParam(te.Field, "Invalid type for '%s': expected %s.", te.Field, jsonKind(te.Type.String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for DisallowUnknownFields.
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badParam(field, "Unknown parameter '%s'.", field)
	}
	return badRequest("", "The request body is not valid JSON.")
}

func (a *Admin) createKey(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name    string `json:"name"`
		Account string `json:"account"`
		Key     string `json:"key"` // optional: import this exact key
	}
	if err := decodeAdmin(r, &in); err != nil {
		return err
	}
	key, secret, err := a.Keys.Create(r.Context(), in.Name, in.Account, in.Key)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"key": key, "secret": secret})
	return nil
}

func (a *Admin) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := a.Keys.List(r.Context())
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []auth.Key{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
	return nil
}

func (a *Admin) revokeKey(w http.ResponseWriter, r *http.Request) error {
	if err := a.Keys.Revoke(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": r.PathValue("id")})
	return nil
}

func (a *Admin) addHost(w http.ResponseWriter, r *http.Request) error {
	if a.Hosts == nil {
		return errNoHostAdmin
	}
	var in HostSpec
	if err := decodeAdmin(r, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return badParam("name", "'name' is required.")
	}
	if in.Owner == "" {
		return badParam("owner", "'owner' is required.")
	}
	if in.Tier == "" {
		in.Tier = "standard"
	}
	host, secret, err := a.Hosts.AddHost(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"host": host, "credentials": Credentials{URL: a.HostURL, HostID: host.ID, Secret: secret}})
	return nil
}

func (a *Admin) listHosts(w http.ResponseWriter, r *http.Request) error {
	if a.Hosts == nil {
		return errNoHostAdmin
	}
	hosts, err := a.Hosts.ListHosts(r.Context())
	if err != nil {
		return err
	}
	if hosts == nil {
		hosts = []HostInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": hosts})
	return nil
}

func (a *Admin) removeHost(w http.ResponseWriter, r *http.Request) error {
	if a.Hosts == nil {
		return errNoHostAdmin
	}
	if err := a.Hosts.RemoveHost(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": r.PathValue("id")})
	return nil
}

func (a *Admin) rotateHost(w http.ResponseWriter, r *http.Request) error {
	if a.Hosts == nil {
		return errNoHostAdmin
	}
	id := r.PathValue("id")
	secret, err := a.Hosts.RotateSecret(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": Credentials{URL: a.HostURL, HostID: id, Secret: secret}})
	return nil
}

func (a *Admin) listStrikes(w http.ResponseWriter, r *http.Request) error {
	if a.Hosts == nil {
		return errNoHostAdmin
	}
	strikes, err := a.Hosts.Strikes(r.Context(), r.URL.Query().Get("host"))
	if err != nil {
		return err
	}
	if strikes == nil {
		strikes = []StrikeInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"strikes": strikes})
	return nil
}

func (a *Admin) clearStrikes(w http.ResponseWriter, r *http.Request) error {
	if a.Hosts == nil {
		return errNoHostAdmin
	}
	if err := a.Hosts.ClearStrikes(r.Context(), r.PathValue("host")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"cleared": r.PathValue("host")})
	return nil
}
