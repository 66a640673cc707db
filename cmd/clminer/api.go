package main

import (
	"context"
	"fmt"
	"net"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/work/miner"
	"clminer/work/observe"
)

func apiFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "api-listen", Usage: "serve /metrics, /api/v1/status and /healthz on this address, e.g. 127.0.0.1:4048 (off by default)", EnvVars: []string{"CLMINER_API_LISTEN"}},
		&cli.StringFlag{Name: "api-token", Usage: "require this bearer token on the API", EnvVars: []string{"CLMINER_API_TOKEN"}},
		&cli.StringFlag{Name: "share-log", Usage: "append one JSON line per share outcome to this file", EnvVars: []string{"CLMINER_SHARE_LOG"}},
	}
}

// apiServer wires the observe package to the command's flags.
type apiServer struct {
	log      *log.Logger
	addr     string
	token    string
	metrics  *observe.Metrics
	shareLog *observe.ShareLog
	srv      *observe.Server
	miner    *miner.Miner
	done     chan struct{}
}

func newAPIServer(c *cli.Context, logger *log.Logger) (*apiServer, error) {
	a := &apiServer{log: logger, addr: c.String("api-listen"), token: c.String("api-token")}
	if a.addr != "" {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			return nil, fmt.Errorf("--api-listen %q: want host:port, e.g. 127.0.0.1:4048", a.addr)
		}
		if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && a.token == "" {
			logger.Warn("the API listens beyond loopback without --api-token", "event", "api.exposed", "addr", a.addr)
		}
		a.metrics = observe.NewMetrics(version, commit, func() miner.Snapshot { return a.miner.Snapshot() })
	}
	if path := c.String("share-log"); path != "" {
		sl, err := observe.OpenShareLog(path)
		if err != nil {
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

func (a *apiServer) start(_ context.Context, m *miner.Miner) error {
	a.miner = m
	if a.metrics == nil {
		return nil
	}
	srv, err := observe.Listen(a.addr, a.token, version, commit, a.metrics, m.Snapshot)
	if err != nil {
		return err
	}
	a.srv = srv
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		if err := srv.Serve(); err != nil {
			a.log.Error("API server stopped", "event", "api.error", "err", err)
		}
	}()
	a.log.Info("API listening", "event", "api.listening", "addr", srv.Addr(), "paths", "/metrics /api/v1/status /healthz")
	return nil
}

func (a *apiServer) stop() {
	if a.srv != nil {
		a.srv.Shutdown()
		<-a.done
	}
	if a.shareLog != nil {
		_ = a.shareLog.Close()
	}
}
