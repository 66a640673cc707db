package observe

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"clminer/work/miner"
)

// Server serves /metrics, /api/v1/status and /healthz.
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
}

// Listen binds addr now, so a bad or busy address is an error at start-up,
// not a log line later. token, when set, is required as a bearer token on
// every path.
func Listen(addr, token, version, commit string, metrics *Metrics, snapshot func() miner.Snapshot) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--api-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(metrics.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("/api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		s := snapshot()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(Status{Version: version, Commit: commit, Healthy: s.Healthy(), Snapshot: s})
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if snapshot().Healthy() {
			fmt.Fprintln(w, "ok: hashing on a live pool")
			return
		}
		http.Error(w, "unhealthy: not hashing on a live pool", http.StatusServiceUnavailable)
	})
	var h http.Handler = mux
	if token != "" {
		h = requireToken(token, mux)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}}, nil
}

func requireToken(token string, next http.Handler) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
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
