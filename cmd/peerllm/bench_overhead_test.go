package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestScrapeMetric(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# HELP go_goroutines x\ngo_goroutines 42\ngo_goroutines_other 7\n"+
			"peerllm_host_tokens_total{model=\"a\"} 3\npeerllm_host_tokens_total{model=\"b\"} 4.5\n")
	}))
	defer srv.Close()
	for _, tt := range []struct {
		name string
		want float64
		err  bool
	}{
		{"go_goroutines", 42, false},
		{"peerllm_host_tokens_total", 7.5, false},
		{"missing_metric", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scrapeMetric(context.Background(), srv.URL, tt.name)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("scrapeMetric = %v, %v; want %v (error %v)", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if p := percentiles(ds); p != [2]time.Duration{51, 100} {
		t.Fatalf("percentiles = %v", p)
	}
	if p := percentiles(nil); p != [2]time.Duration{} {
		t.Fatalf("percentiles(nil) = %v", p)
	}
}

func TestTokenEnds(t *testing.T) {
	ends, err := tokenEnds("m", "a prompt", 10)
	if err != nil || len(ends) != 10 {
		t.Fatalf("tokenEnds = %v, %v", ends, err)
	}
	text, err := directText("m", "a prompt", 10)
	if err != nil || ends[9] != len(text) {
		t.Fatalf("last end %d, text of %d bytes (%v)", ends[9], len(text), err)
	}
	for i := 1; i < len(ends); i++ {
		if ends[i] <= ends[i-1] {
			t.Fatalf("ends not increasing: %v", ends)
		}
	}
}

func TestProcCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		x := 0
		for i := 0; i < 1e6; i++ {
			x += i
		}
		_ = x
		after, err := procCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time did not advance: %v", after)
		}
	}
}
