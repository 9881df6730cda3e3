// Package load runs measured operations one at a time or with a fixed
// number in flight and collects their latencies.
package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Op performs the i-th operation and returns its latency.
type Op func(ctx context.Context, i int) (time.Duration, error)

// Run performs n operations with at most inFlight running at once (1: one
// after the other) and returns their latencies in index order. The first
// error cancels the operations not yet started and is returned, with any
// later ones, once the running ones end; a cancelled ctx returns its error.
func Run(ctx context.Context, n, inFlight int, op Op) ([]time.Duration, error) {
	if n < 0 || inFlight < 1 {
		return nil, fmt.Errorf("invalid load: %d operations, %d in flight", n, inFlight)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]time.Duration, n)
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range min(inFlight, n) {
		wg.Go(func() {
			for i := range next {
				d, err := op(ctx, i)
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
					continue
				}
				out[i] = d
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	// When the caller cancelled, the operations' errors only echo that.
	if err := parent.Err(); err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
