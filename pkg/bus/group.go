package bus

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// Group runs a handler's helper goroutines (parallel API calls for one
// batch) like a sync.WaitGroup, except that a panic in one of them does
// not kill the process: it is caught, and [Group.Wait] panics with it in
// the handler's goroutine, where the runner's recover turns it into a
// permanent error for the batch. The zero value is ready to use.
type Group struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	panicked *HelperPanic
}

// HelperPanic is what [Group.Wait] panics with: the first helper's panic
// value and the stack where it happened.
type HelperPanic struct {
	Value any
	Stack []byte
}

func (p *HelperPanic) String() string { return fmt.Sprintf("in a helper goroutine: %v", p.Value) }

// Go runs fn in a goroutine.
func (g *Group) Go(fn func()) {
	g.wg.Go(func() {
		defer func() {
			if v := recover(); v != nil {
				g.mu.Lock()
				if g.panicked == nil {
					g.panicked = &HelperPanic{Value: v, Stack: debug.Stack()}
				}
				g.mu.Unlock()
			}
		}()
		fn()
	})
}

// Wait waits for every goroutine, then panics with the first one's panic,
// if one panicked.
func (g *Group) Wait() {
	g.wg.Wait()
	g.mu.Lock()
	p := g.panicked
	g.mu.Unlock()
	if p != nil {
		panic(p)
	}
}
