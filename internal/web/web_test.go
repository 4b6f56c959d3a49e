package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/web"
)

func TestPages(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		path, status, contains string
	}{
		{"/dashboard/", "200", `<script src="app.js">`},
		{"/dashboard/app.js", "200", "/admin/v1/overview"},
		{"/dashboard/style.css", "200", "{"},
		{"/pricing", "200", "pricing.js"},
		{"/dashboard", "301", ""},
		{"/dashboard/nope.js", "404", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := noFollow.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if got := resp.Status[:3]; got != tt.status {
				t.Fatalf("status %s, want %s", resp.Status, tt.status)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Fatalf("body lacks %q", tt.contains)
			}
			if tt.status == "200" {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
					t.Fatalf("CSP %q", csp)
				}
				if resp.Header.Get("Referrer-Policy") != "no-referrer" {
					t.Fatal("no Referrer-Policy")
				}
			}
		})
	}
}
