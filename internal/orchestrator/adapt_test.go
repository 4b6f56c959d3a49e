package orchestrator

import (
	"errors"
	"fmt"
	"testing"

	"github.com/peerllm/peerllm/internal/httpapi"
	"github.com/peerllm/peerllm/internal/registry"
)

// TestRegErrorParam checks that a refused host spec names the field at
// fault in the API error's param.
func TestRegErrorParam(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		param any
	}{
		{"name", fmt.Errorf("%w: name must be 1-100 characters", registry.ErrInvalid), "name"},
		{"owner", fmt.Errorf("%w: owner must be 1-100 characters", registry.ErrInvalid), "owner"},
		{"region", fmt.Errorf("%w: region too long", registry.ErrInvalid), "region"},
		{"tier", fmt.Errorf("%w: tier must be \"standard\" or \"enterprise\"", registry.ErrInvalid), "tier"},
		{"no field", fmt.Errorf("%w: something else", registry.ErrInvalid), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e *httpapi.Error
			if !errors.As(regError(c.err), &e) || e.Status != 400 {
				t.Fatalf("regError(%v) = %v", c.err, regError(c.err))
			}
			if e.Param != c.param {
				t.Fatalf("param %v, want %v", e.Param, c.param)
			}
		})
	}
}
