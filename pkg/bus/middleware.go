package bus

// Middleware wraps the batch handler of a runner of spec's consumer (a
// [Bus.Run] handler is wrapped as a batch of one), for cross-cutting
// concerns such as timing. It is called once per runner, when it starts.
type Middleware func(spec ConsumerSpec, h BatchHandler) BatchHandler

// Use has every runner started on b afterwards wrap its handler with mw,
// outermost last: a process's wiring instruments every worker on its
// connection this way, whichever service started the worker. It is safe
// for concurrent use.
func (b *Bus) Use(mw Middleware) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.middleware = append(b.middleware, mw)
}

// wrap applies the middleware given to [Bus.Use] to h.
func (b *Bus) wrap(spec ConsumerSpec, h BatchHandler) BatchHandler {
	b.mu.Lock()
	mws := append([]Middleware(nil), b.middleware...)
	b.mu.Unlock()
	for _, mw := range mws {
		h = mw(spec, h)
	}
	return h
}
