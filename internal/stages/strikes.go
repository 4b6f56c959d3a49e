package stages

import (
	"context"
	"errors"
	"log/slog"

	"github.com/peerllm/peerllm/internal/pipeline"
	"github.com/peerllm/peerllm/internal/registry"
)

// Striker records a strike against a host. *registry.Registry implements it
// (through RegistryStriker).
type Striker interface {
	// Strike records one strike with a short reason (never content).
	Strike(ctx context.Context, hostID, reason string) error
}

// RegistryStriker adapts the host registry to Striker.
type RegistryStriker struct{ Registry *registry.Registry }

// Strike implements Striker.
func (r RegistryStriker) Strike(ctx context.Context, hostID, reason string) error {
	_, err := r.Registry.Strike(ctx, hostID, reason)
	return err
}

// Strikes is the meter that strikes hosts: for every output stop a stage
// blamed on the host (pipeline.Stop.HostFault: an unsafe answer to a safe
// prompt) and that the consumer API attributed to one (Stop.Host), it records
// a strike whose reason names the categories. Stops without fault (the
// prompt was borderline) and slowness never strike.
type Strikes struct {
	Striker Striker // required
	Metrics *Metrics
	Log     *slog.Logger
}

// Meter implements pipeline.Meter.
func (s *Strikes) Meter(ctx context.Context, o pipeline.Outcome) {
	m := s.Metrics.get()
	for _, st := range o.Stops {
		if st == nil || !st.HostFault {
			continue
		}
		if st.Host == "" {
			m.strikeAdd("unknown_host")
			continue
		}
		err := s.Striker.Strike(ctx, st.Host, StrikeReason(st.Categories))
		switch {
		case err == nil:
			m.strikeAdd("ok")
		case errors.Is(err, registry.ErrNotFound):
			m.strikeAdd("unknown_host")
		default:
			m.strikeAdd("error")
			if s.Log != nil {
				s.Log.Error("strike host", "request_id", o.RequestID, "host", st.Host, "err", err)
			}
		}
	}
}
