package observe

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"clminer/work/connlimit"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/observe/luck"
)

// Server serves /metrics, /api/v1/status, /healthz and the status page
// at /.
type Server struct {
	srv   *http.Server
	ln    net.Listener
	mux   *http.ServeMux
	guard func(http.Handler) http.Handler
}

// Status is the /api/v1/status document.
type Status struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Healthy bool   `json:"healthy"`
	miner.Snapshot
	// GPUs is NVML's telemetry per GPU; absent without NVML.
	GPUs []device.GPUState `json:"gpus,omitempty"`
	// Luck is the all-time best share and the odds of a block.
	Luck *luck.Luck `json:"luck,omitempty"`
}

// Listen binds addr now, so a bad or busy address is an error at start-up,
// not a log line later. token, when set, is required as a bearer token
// ("Authorization: Bearer TOKEN", the scheme in any case) on /metrics and
// /api/v1/status; /healthz never asks for it, so liveness probes work and
// it tells nothing beyond healthy or not.
//
// extras, called on every status document, add what lives outside the
// miner (GPU telemetry, the all-time best share).
func Listen(addr, token, version, commit string, metrics *Metrics, snapshot func() miner.Snapshot, extras ...func(*Status)) (*Server, error) {
	return ListenHandlers(addr, token, Handlers{
		Metrics: metrics.Registry(),
		Status: func() any {
			s := snapshot()
			st := Status{Version: version, Commit: commit, Healthy: s.Healthy(), Snapshot: s}
			for _, x := range extras {
				x(&st)
			}
			return st
		},
		Healthy: func() (bool, string) {
			if snapshot().Healthy() {
				return true, "ok: hashing on a live pool"
			}
			return false, "unhealthy: not hashing on a live pool"
		},
	})
}

// Handlers are what a command serves: the miner's, or the farm proxy's.
type Handlers struct {
	Metrics prometheus.Gatherer
	Status  func() any            // the /api/v1/status document
	Healthy func() (bool, string) // /healthz: healthy or not, and the line to say
}

// ListenHandlers binds addr for h under the same exposure rules as Listen.
func ListenHandlers(addr, token string, h Handlers) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--api-listen %s: %w", addr, err)
	}
	guard := func(h http.Handler) http.Handler { return h }
	if token != "" {
		guard = func(h http.Handler) http.Handler { return requireToken(token, h) }
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", guard(promhttp.HandlerFor(h.Metrics, promhttp.HandlerOpts{})))
	mux.Handle("/api/v1/status", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(h.Status())
	})))
	mux.Handle("GET /{$}", pageHandler(token != ""))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, msg := h.Healthy()
		if ok {
			fmt.Fprintln(w, msg)
			return
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
	})
	// Anyone who reaches the port may connect before the token is checked:
	// bound what a connection can make the server hold (headers, idle
	// time) and how many each address and all together keep open.
	lim := connlimit.Wrap(ln, connlimit.Limits{Total: apiMaxConns, PerPeer: apiMaxConnsPerPeer, ActiveOnRead: true})
	return &Server{ln: lim, mux: mux, guard: guard, srv: &http.Server{Handler: mux, MaxHeaderBytes: apiMaxHeaderBytes, ConnState: lim.ConnState,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}}, nil
}

// ServeHistory adds /api/v1/history, under the same token as the status:
// the document history returns (the miner's last hour of hashrates, for
// the status page's chart; kept apart from the status so the documents
// polled every few seconds stay small). Call it before Serve.
func (s *Server) ServeHistory(history func() any) {
	s.mux.Handle("/api/v1/history", s.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(history())
	})))
}

// Limits of the HTTP API. A scrape or status request has a few hundred
// bytes of headers (a bearer token included); Go's default MaxHeaderBytes is
// 1 MB per connection. Past a connection limit the oldest connection that
// is waiting for a request (connected silent, or kept alive between
// requests) is closed to make room (package connlimit).
const (
	apiMaxHeaderBytes  = 16 << 10
	apiMaxConns        = 128
	apiMaxConnsPerPeer = 16
)

// requireToken accepts "Bearer TOKEN" with the scheme in any case (RFC 9110
// auth schemes are case-insensitive); the token is compared in constant time.
func requireToken(token string, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clminer"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve runs until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, waiting briefly for requests in progress.
func (s *Server) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// Close releases the address of a server that was never served (the
// command failed before it could start).
func (s *Server) Close() {
	_ = s.srv.Close()
	_ = s.ln.Close()
}
