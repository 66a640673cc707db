package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/work/miner"
	"clminer/work/observe"
)

func apiFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api-listen", Usage: "serve the status page, /metrics, /api/v1/status and /healthz on this address, e.g. 127.0.0.1:4048 (off by default; beyond loopback needs --api-token)", EnvVars: []string{"CLMINER_API_LISTEN"}},
		&cli.StringFlag{Name: "api-token", Usage: "require this bearer token on /metrics, /api/v1/status and /api/v1/history (not /healthz or the status page)", EnvVars: []string{"CLMINER_API_TOKEN"}},
		&cli.BoolFlag{Name: "api-allow-unauthenticated", Usage: "serve the API beyond loopback without --api-token (anyone who can reach the port reads it)", EnvVars: []string{"CLMINER_API_ALLOW_UNAUTHENTICATED"}},
		&cli.StringFlag{Name: "share-log", Usage: "append one JSON line per share outcome to this file", EnvVars: []string{"CLMINER_SHARE_LOG"}},
	}
}

// apiConfig is the API and share-log settings, validated.
type apiConfig struct {
	listen        string
	token         string
	unauthExposed bool // listening beyond loopback without a token, allowed explicitly
	shareLog      string
	allowUnauth   bool
}

// apiOptions applies the exposure rule: the API listens beyond loopback
// only with --api-token, or with an explicit --api-allow-unauthenticated.
func apiOptions(c *cli.Context) (apiConfig, error) {
	a := apiConfig{listen: strings.TrimSpace(c.String("api-listen")), token: c.String("api-token"),
		shareLog: c.String("share-log"), allowUnauth: c.Bool("api-allow-unauthenticated")}
	if a.listen == "" {
		switch {
		case a.token != "":
			return a, errors.New("--api-token is set but --api-listen is not: give --api-listen host:port to serve the API (or drop the token)")
		case a.allowUnauth:
			return a, errors.New("--api-allow-unauthenticated is set but --api-listen is not: give --api-listen host:port")
		}
		return a, nil
	}
	host, port, err := net.SplitHostPort(a.listen)
	if err != nil || port == "" {
		return a, fmt.Errorf("--api-listen %q: want host:port, e.g. 127.0.0.1:4048", a.listen)
	}
	if !isLoopback(host) && a.token == "" {
		if !a.allowUnauth {
			return a, fmt.Errorf("--api-listen %s reaches beyond loopback: set --api-token (or --api-allow-unauthenticated to serve it to the network without one)", a.listen)
		}
		a.unauthExposed = true
	}
	return a, nil
}

// isLoopback: "localhost" or a loopback IP. An empty host or any other name
// may reach the network.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiServer is the HTTP API and the share log as the flags ask: the
// address bound and the file opened before any device, the API served once
// the miner it shows exists.
type apiServer struct {
	token    string
	ln       net.Listener     // nil: no --api-listen
	metrics  *observe.Metrics // nil: no --api-listen
	shareLog *observe.ShareLog
	served   bool // ln belongs to the running server
}

// newAPIServer binds the API address and opens the share log, so that a
// busy port or an unwritable file fails before any device is opened.
func newAPIServer(cfg apiConfig, logger *log.Logger) (*apiServer, error) {
	a := &apiServer{token: cfg.token}
	if cfg.listen != "" {
		ln, err := listen("--api-listen", cfg.listen)
		if err != nil {
			return nil, err
		}
		a.ln = ln
		// The miner, made later, is given the metrics as its observer;
		// serve hands them its snapshot.
		a.metrics = observe.NewMetrics(version, commit, nil)
		if cfg.unauthExposed {
			logger.Warn("the API is served beyond loopback without a token (--api-allow-unauthenticated)", "event", "api.exposed", "addr", ln.Addr().String())
		}
	}
	if cfg.shareLog != "" {
		sl, err := observe.OpenShareLog(cfg.shareLog)
		if err != nil {
			a.close()
			return nil, err
		}
		a.shareLog = sl
	}
	return a, nil
}

// observer returns what the miner should notify, or nil (an untyped nil, so
// the miner's nil check works).
func (a *apiServer) observer() miner.Observer {
	var obs observe.Observers
	if a.metrics != nil {
		obs = append(obs, a.metrics)
	}
	if a.shareLog != nil {
		obs = append(obs, a.shareLog)
	}
	if len(obs) == 0 {
		return nil
	}
	return obs
}

// serve runs the API of m in cr; extras add to its status document what
// lives outside the miner.
func (a *apiServer) serve(m *miner.Miner, cr *crew, extras ...func(*observe.Status)) {
	if a.ln == nil {
		return
	}
	a.served = true
	srv := observe.NewServer(a.ln, a.token, observe.MinerHandlers(version, commit, a.metrics, m.Snapshot, func() any { return m.History() }, extras...))
	cr.serveAPI(srv, "/ /metrics /api/v1/status /api/v1/history /healthz")
}

// close closes the share log, and the address when the API never served;
// the crew stops a served one.
func (a *apiServer) close() {
	if a.ln != nil && !a.served {
		_ = a.ln.Close()
	}
	if a.shareLog != nil {
		_ = a.shareLog.Close()
	}
}
