package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/peerllm/peerllm/internal/ledger"
	"github.com/peerllm/peerllm/internal/orchestrator"
)

// loadPrices reads --prices, or returns the embedded default list (the tiny
// model and "*"; see docs/MONEY.md).
func loadPrices(path string) (*ledger.PriceList, error) {
	if path == "" {
		return ledger.DefaultPriceList(), nil
	}
	return ledger.LoadPriceList(path, ledger.DefaultPricingRules())
}

// reloadPricesOnHUP re-reads the price list file on SIGHUP until ctx ends. A
// list that is refused leaves the one in use in place, with a log line
// saying why. The returned stop function waits for the watcher.
func reloadPricesOnHUP(ctx context.Context, o *orchestrator.Orchestrator, path string, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if path == "" {
				log.Warn("SIGHUP: no --prices file to reload; the embedded default price list stays")
				continue
			}
			pl, err := ledger.LoadPriceList(path, ledger.DefaultPricingRules())
			if err == nil {
				err = o.SetPrices(pl)
			}
			if err != nil {
				log.Error("price list reload refused; the list in use stays", "file", path, "err", err)
				continue
			}
			log.Info("price list reloaded", "file", path, "versions", len(pl.Versions))
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		wg.Wait()
	}
}
