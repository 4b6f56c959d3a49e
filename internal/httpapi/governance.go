package httpapi

import (
	"context"
	"net/http"

	"github.com/peerllm/peerllm/internal/auth"
)

// Governance serves the admin API's governance routes. The orchestrator
// implements it over internal/governance; answers are JSON-ready values.
type Governance interface {
	// Seats is {regions: [...], seats: [...]} for region ("" = all).
	Seats(ctx context.Context, region string) (any, error)
	// Federation is {regions: [...readiness], computed_at}.
	Federation(ctx context.Context) (any, error)
	// Overview is everything the dashboard renders (no content, figures only).
	Overview(ctx context.Context) (any, error)
	// SetKeyTier makes an API key prefer hosts of a tier ("" = any).
	SetKeyTier(ctx context.Context, keyID, tier string) error
	// SetHostFallback marks a host as an operator-run fallback host.
	SetHostFallback(ctx context.Context, hostID string, fallback bool) error
}

// KeyFromContext is the API key that authenticated the request ctx belongs
// to (zero outside a consumer request). The orchestrator reads the key's
// routing preferences with it; hosts never see it.
func KeyFromContext(ctx context.Context) auth.Key { return apiKey(ctx) }

func (s *Server) governanceRoutes(mux *http.ServeMux) {
	a, gv := s.cfg.Admin, s.cfg.Governance
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, a.guard(s, f))
	}
	answer := func(w http.ResponseWriter, v any, err error) error {
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
	h("GET /admin/v1/seats", func(w http.ResponseWriter, r *http.Request) error {
		v, err := gv.Seats(r.Context(), r.URL.Query().Get("region"))
		return answer(w, v, err)
	})
	h("GET /admin/v1/federation", func(w http.ResponseWriter, r *http.Request) error {
		v, err := gv.Federation(r.Context())
		return answer(w, v, err)
	})
	h("GET /admin/v1/overview", func(w http.ResponseWriter, r *http.Request) error {
		v, err := gv.Overview(r.Context())
		return answer(w, v, err)
	})
	h("PUT /admin/v1/keys/{id}/tier", func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Tier string `json:"tier"`
		}
		if err := decodeAdmin(r, &in); err != nil {
			return err
		}
		id := r.PathValue("id")
		keys, err := a.Keys.List(r.Context())
		if err != nil {
			return err
		}
		found := false
		for _, k := range keys {
			found = found || k.ID == id
		}
		if !found {
			return auth.ErrNotFound
		}
		if err := gv.SetKeyTier(r.Context(), id, in.Tier); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"key": id, "prefer_tier": in.Tier})
		return nil
	})
	h("PUT /admin/v1/hosts/{id}/fallback", func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Fallback *bool `json:"fallback"`
		}
		if err := decodeAdmin(r, &in); err != nil {
			return err
		}
		if in.Fallback == nil {
			return badParam("fallback", "'fallback' (true or false) is required.")
		}
		id := r.PathValue("id")
		if err := gv.SetHostFallback(r.Context(), id, *in.Fallback); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"host": id, "fallback": *in.Fallback})
		return nil
	})
}
