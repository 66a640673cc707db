package stratum

import (
	"net"
	"strings"

	"clminer/stratum/wire"
)

func (s *session) handle(m *wire.Message) {
	if m.Kind == wire.KindResponse {
		s.handleResponse(m)
		return
	}
	switch m.Method {
	case wire.MethodNotify:
		s.onNotify(m.Params)
	case wire.MethodSetDifficulty:
		d, err := ParseDifficulty(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring set_difficulty", "event", "pool.bad_message", "err", err)
			break
		}
		s.onDifficulty(d)
	case wire.MethodSetExtranonce:
		en1, size, err := ParseSetExtranonce(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring set_extranonce", "event", "pool.bad_message", "err", err)
			break
		}
		s.mu.Lock()
		if size == 0 {
			size = s.en2size
			if s.pendingEN != nil {
				size = s.pendingEN.size
			}
		}
		s.pendingEN = &pendingExtranonce{en1: en1, size: size}
		s.mu.Unlock()
		s.logJob.Info(s.log, "pool changed extranonce; applies from the next job", "event", "pool.extranonce", "extranonce1", en1, "extranonce2_size", size)
		if m.Kind == wire.KindRequest {
			s.respond(m.ID, true, nil)
		}
	case wire.MethodSetVersionMask:
		mask, err := ParseVersionMask(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring set_version_mask", "event", "pool.bad_message", "err", err)
			break
		}
		s.setMask(mask, s.isRolling())
	case wire.MethodReconnect:
		r, err := ParseReconnect(m.Params)
		if err != nil {
			s.logJob.Warn(s.log, "ignoring client.reconnect", "event", "pool.bad_message", "err", err)
			break
		}
		s.onReconnect(r)
	case wire.MethodShowMessage:
		s.logMessage.Info(s.log, "message from pool", "event", "pool.message", "text", clip(ParseShowMessage(m.Params)))
		if m.Kind == wire.KindRequest {
			s.respond(m.ID, true, nil)
		}
	case wire.MethodGetVersion:
		if m.Kind == wire.KindRequest {
			s.respond(m.ID, s.c.opts.UserAgent, nil)
		}
	case wire.MethodPing:
		if m.Kind == wire.KindRequest {
			s.respond(m.ID, "pong", nil)
		}
	default:
		s.log.Debug("unknown method from pool", "event", "pool.unknown_method", "method", clip(m.Method))
		if m.Kind == wire.KindRequest {
			s.respond(m.ID, nil, wire.NewError(wire.CodeMethodNotFound, "Method '"+clip(m.Method)+"' not found"))
		}
	}
}

func (s *session) isRolling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rolling
}

// pendingExtranonce is a mining.set_extranonce that applies from the next job.
type pendingExtranonce struct {
	en1  string
	size int
}

func (s *session) onReconnect(r Reconnect) {
	s.mu.Lock()
	authorized := s.authorized
	if !authorized && s.authOK && !s.probe {
		// Accepted but not yet live: ready() obeys it (see authOK).
		s.deferredReconnect = &r
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if !authorized {
		// A pool may only move a worker it accepted; before that the request
		// is a redirect loop or a man in the middle.
		s.logJob.Warn(s.log, "ignoring client.reconnect before the worker is authorized", "event", "pool.reconnect_refused")
		return
	}
	// A null host or port means "unchanged": the connection's own, which
	// after an earlier redirect is not the configured one. (The host used to
	// come from the configured URL while the port came from the connection,
	// so reconnect(null, P) after a redirect mixed the two.)
	cur, curPort, _ := net.SplitHostPort(s.addr)
	host := r.Host
	if host == "" {
		host = cur
	}
	port := r.Port
	if port == "" {
		port = curPort
	}
	if !s.pc.AllowReconnectAnyDomain && !sameDomain(cur, host) && !sameDomain(s.url.Host, host) {
		s.logJob.Warn(s.log, "refusing client.reconnect to another domain", "event", "pool.reconnect_refused", "to", net.JoinHostPort(host, port))
		return
	}
	s.log.Debug("client.reconnect target", "event", "pool.reconnect_target", "to", net.JoinHostPort(host, port), "wait_s", r.Wait)
	s.mu.Lock()
	s.reconnect = &Reconnect{Host: host, Port: port, Wait: r.Wait}
	s.mu.Unlock()
	s.close(ErrReconnectRequested)
}

func (s *session) reconnectReq() *Reconnect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnect
}

// sameDomain compares the last two labels of host names (cgminer's rule);
// IP addresses must be equal.
func sameDomain(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b {
		return true
	}
	if net.ParseIP(a) != nil || net.ParseIP(b) != nil {
		return false
	}
	return baseDomain(a) == baseDomain(b) && baseDomain(a) != ""
}

func baseDomain(h string) string {
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return h
	}
	return strings.Join(labels[len(labels)-2:], ".")
}
