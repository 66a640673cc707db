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
	srv *http.Server
	ln  net.Listener
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

// MinerHandlers are what a miner serves: /api/v1/status is the miner's
// snapshot as a Status, /healthz is healthy while it hashes on a live pool,
// and /api/v1/history is history's document (the miner's last hour of
// hashrates, for the status page's chart; kept apart from the status so
// the documents polled every few seconds stay small).
//
// extras, called on every status document, add what lives outside the
// miner (GPU telemetry, the all-time best share). Metrics made without a
// snapshot read this one from here on.
func MinerHandlers(version, commit string, metrics *Metrics, snapshot func() miner.Snapshot, history func() any, extras ...func(*Status)) Handlers {
	if metrics.snapshot == nil {
		metrics.snapshot = snapshot
		metrics.reg.MustRegister(&snapshotCollector{m: metrics})
	}
	return Handlers{
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
		History: history,
	}
}

// Handlers are what a command serves: the miner's, or the farm proxy's.
type Handlers struct {
	Metrics prometheus.Gatherer
	Status  func() any            // the /api/v1/status document
	Healthy func() (bool, string) // /healthz: healthy or not, and the line to say
	History func() any            // the /api/v1/history document; nil: not served
}

// NewServer serves h on ln. The caller binds ln, so that a bad or busy
// address is an error at start-up, not a log line later; the server owns
// it from here and closes it when Run ends.
//
// token, when set, is required as a bearer token ("Authorization: Bearer
// TOKEN", the scheme in any case) on /metrics, /api/v1/status and
// /api/v1/history; /healthz never asks for it, so liveness probes work and
// it tells nothing beyond healthy or not.
func NewServer(ln net.Listener, token string, h Handlers) *Server {
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
	if h.History != nil {
		mux.Handle("/api/v1/history", guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(h.History())
		})))
	}
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
	return &Server{ln: lim, srv: &http.Server{Handler: mux, MaxHeaderBytes: apiMaxHeaderBytes, ConnState: lim.ConnState,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 30 * time.Second}}
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

// Run serves until ctx ends, then stops: requests in progress get
// shutdownGrace to finish, and connections still open after it are closed.
// It returns once the server is down, with nil unless serving failed.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	select {
	case err := <-served:
		_ = s.srv.Close()
		return err
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if s.srv.Shutdown(grace) != nil {
		_ = s.srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// shutdownGrace is how long requests in progress may take at shutdown.
const shutdownGrace = 2 * time.Second
