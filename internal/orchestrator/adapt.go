package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/peerllm/peerllm/internal/dispatch"
	"github.com/peerllm/peerllm/internal/httpapi"
	"github.com/peerllm/peerllm/internal/registry"
)

// backend adapts the dispatcher to httpapi.Backend.
type backend struct {
	d    *dispatch.Dispatcher
	mode string
}

func (b *backend) Models() []httpapi.Model {
	ms := b.d.Models()
	out := make([]httpapi.Model, 0, len(ms))
	for _, m := range ms {
		out = append(out, httpapi.Model{Name: m.Name, Hosts: m.Hosts, ContextLength: m.ContextLength})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (b *backend) Generate(ctx context.Context, req httpapi.GenRequest, emit func(httpapi.Delta) error) (httpapi.GenOutcome, error) {
	mode := req.Mode
	if mode == "" {
		mode = b.mode
	}
	dreq := dispatch.Request{ID: req.ID, Model: req.Model, Engine: req.Engine, Mode: mode}
	if req.Progress != nil {
		dreq.Progress = func(o dispatch.Outcome) { req.Progress(genOutcome(o)) }
	}
	out, err := b.d.Generate(ctx, dreq,
		func(d dispatch.Delta) error { return emit(httpapi.Delta{Text: d.Text, Tokens: d.Tokens, Host: d.Host}) })
	return genOutcome(out), apiError(err)
}

func genOutcome(out dispatch.Outcome) httpapi.GenOutcome {
	return httpapi.GenOutcome{
		FinishReason: out.FinishReason, PromptTokens: out.PromptTokens, CompletionTokens: out.CompletionTokens,
		HostTokens: out.HostTokens, Failovers: out.Failovers, Hedges: out.Hedges,
	}
}

// apiError tags the dispatcher's errors with the API's, so the API's one
// error mapping can answer them.
func apiError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, dispatch.ErrModelNotFound):
		return fmt.Errorf("%w: %w", httpapi.ErrModelNotFound, err)
	case errors.Is(err, dispatch.ErrContextLength):
		return fmt.Errorf("%w: %w", httpapi.ErrContextLength, err)
	case errors.Is(err, dispatch.ErrOverloaded):
		return fmt.Errorf("%w: %w", httpapi.ErrOverloaded, err)
	case errors.Is(err, dispatch.ErrNoHost):
		return fmt.Errorf("%w: %w", httpapi.ErrNoHost, err)
	}
	return err
}

// hostAdmin adapts the registry to httpapi.HostAdmin.
type hostAdmin struct {
	reg *registry.Registry
}

func hostInfo(h registry.Host) httpapi.HostInfo {
	hi := httpapi.HostInfo{ID: h.ID, Name: h.Name, Owner: h.Owner, Region: h.Region, Tier: h.Tier,
		Status: h.Status, Connected: h.Live.Online, Strikes: h.Strikes, CreatedAt: h.CreatedAt}
	for _, m := range h.Live.Models {
		hi.Models = append(hi.Models, m.Name)
	}
	return hi
}

func regError(err error) error {
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("%w: %w", httpapi.ErrHostNotFound, err)
	}
	if errors.Is(err, registry.ErrInvalid) {
		e := &httpapi.Error{Status: 400, Type: "invalid_request_error", Code: "invalid_value", Message: err.Error()}
		// The registry's messages start with the field at fault: "invalid host: name must be ...".
		_, detail, _ := strings.Cut(err.Error(), ": ")
		if field, _, _ := strings.Cut(detail, " "); field == "name" || field == "owner" || field == "region" || field == "tier" {
			e.Param = field
		}
		return e
	}
	return err
}

func (a *hostAdmin) AddHost(ctx context.Context, spec httpapi.HostSpec) (httpapi.HostInfo, string, error) {
	h, secret, err := a.reg.AddHost(ctx, registry.HostSpec{Name: spec.Name, Owner: spec.Owner, Region: spec.Region, Tier: spec.Tier})
	if err != nil {
		return httpapi.HostInfo{}, "", regError(err)
	}
	return hostInfo(h), secret, nil
}

func (a *hostAdmin) ListHosts(ctx context.Context) ([]httpapi.HostInfo, error) {
	hs, err := a.reg.ListHosts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.HostInfo, len(hs))
	for i, h := range hs {
		out[i] = hostInfo(h)
	}
	return out, nil
}

func (a *hostAdmin) RemoveHost(ctx context.Context, id string) error {
	return regError(a.reg.RemoveHost(ctx, id))
}

func (a *hostAdmin) RotateSecret(ctx context.Context, id string) (string, error) {
	s, err := a.reg.RotateSecret(ctx, id)
	return s, regError(err)
}

func (a *hostAdmin) Strikes(ctx context.Context, hostID string) ([]httpapi.StrikeInfo, error) {
	ids := []string{hostID}
	if hostID == "" {
		hs, err := a.reg.ListHosts(ctx)
		if err != nil {
			return nil, err
		}
		ids = ids[:0]
		for _, h := range hs {
			ids = append(ids, h.ID)
		}
	}
	var out []httpapi.StrikeInfo
	for _, id := range ids {
		ss, err := a.reg.Strikes(ctx, id)
		if err != nil {
			return nil, regError(err)
		}
		for _, s := range ss {
			out = append(out, httpapi.StrikeInfo{HostID: s.HostID, Reason: s.Reason, At: s.At})
		}
	}
	return out, nil
}

func (a *hostAdmin) ClearStrikes(ctx context.Context, hostID string) error {
	return regError(a.reg.ClearStrikes(ctx, hostID))
}
