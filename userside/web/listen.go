package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// DefaultHost is the host Listen binds when the address names none.
const DefaultHost = "127.0.0.1"

// Exposed is what a non-loopback listener publishes, for the warning.
const Exposed = "per-CPU hardware and software counters, the names, pids and resource use of the watched processes, " +
	"per-syscall latencies and outliers, the producer's status and the region's full decoded contents"

// Listen opens a TCP listener on addr ("HOST:PORT", ":PORT" or "PORT";
// an empty host is 127.0.0.1, so that listening on every interface must
// be asked for, e.g. "0.0.0.0:9477"). It returns a warning naming the
// data exposed when the listener is not on a loopback address, else "".
func Listen(addr string) (ln net.Listener, warning string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// A bare port.
		host, port = "", addr
	}
	if host == "" {
		host = DefaultHost
	}
	ln, err = net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	if !IsLoopback(ln.Addr()) {
		warning = fmt.Sprintf("warning: listening on %s, which is not a loopback address: anyone who can reach it can read %s "+
			"(read-only, without authentication); bind 127.0.0.1 or put an authenticating proxy in front", ln.Addr(), Exposed)
	}
	return ln, warning, nil
}

// IsLoopback reports whether a listener's address is a loopback one.
func IsLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// NewHTTPServer returns an http.Server for h with time-outs on every
// phase of a request, so that slow or idle clients cannot hold
// connections forever.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           http.TimeoutHandler(h, 10*time.Second, "request timed out"),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// Serve serves s on ln until ctx is done, sampling the region meanwhile;
// it then shuts the server down (waiting at most a second for requests in
// flight). On a loopback listener it refuses non-loopback Host headers.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.loopbackOnly.Store(IsLoopback(ln.Addr()))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	srv := NewHTTPServer(s.Handler())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	cancel()
	<-done
	s.closeReopened()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
