package gbt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"clminer/work/safetext"
)

// MaxResponse bounds one RPC reply. A full 4 MWU template is about 10-16 MB
// of JSON (every transaction twice in hex plus its fields); anything much
// larger is a broken or hostile node.
const MaxResponse = 48 << 20

// RPCError is an error object the node returned.
type RPCError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("node error %d: %s", e.Code, e.Message) }

// Node RPC error codes the source acts on (Bitcoin Core's rpc/protocol.h;
// btcd uses the same numbers).
const (
	codeInInitialDownload  = -10
	codeClientNotConnected = -9
	codeMethodNotFound     = -32601
	codeWarmingUp          = -28
)

// errBusy is Bitcoin Core's "work queue depth exceeded" (HTTP 503): the
// request was refused before it was read.
var errBusy = errors.New("the node's RPC work queue is full (HTTP 503): raise rpcworkqueue")

// ErrAuth is a refused login: wrong -u/-p or a stale cookie.
var ErrAuth = errors.New("the node refused the RPC credentials (HTTP 401): check -u/-p, or --rpc-cookie for a node that writes .cookie")

// Endpoint is where and how to reach the node's JSON-RPC.
type Endpoint struct {
	// URL is http(s)://host:port[/path], without credentials.
	URL  string
	User string
	Pass string
	// Cookie is the path of the node's .cookie file (user:password), read
	// at every connect because the node writes a new one when it restarts.
	Cookie string
}

// rpcClient speaks JSON-RPC 1.0 over HTTP POST, as Bitcoin Core and btcd do.
type rpcClient struct {
	ep   Endpoint
	http *http.Client
	id   atomic.Uint64
}

// credentials returns the user and password to send; never logged.
func (c *rpcClient) credentials() (string, string, error) {
	if c.ep.Cookie == "" {
		return c.ep.User, c.ep.Pass, nil
	}
	b, err := os.ReadFile(c.ep.Cookie)
	if err != nil {
		return "", "", fmt.Errorf("rpc cookie: %w", err)
	}
	user, pass, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok || user == "" {
		return "", "", fmt.Errorf("rpc cookie %s: want user:password on one line", c.ep.Cookie)
	}
	return user, pass, nil
}

// call runs one method. A reply over MaxResponse, malformed JSON or an
// HTTP error is an error that names what went wrong and never the password.
func (c *rpcClient) call(ctx context.Context, method string, params []any, result any) error {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": c.id.Add(1), "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ep.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("node URL: %w", err)
	}
	user, pass, err := c.credentials()
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in our own message already
		}
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return ErrAuth
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("%s: %w", method, errBusy)
	}
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s: the node refused this address (HTTP 403): allow it with rpcallowip", method)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return fmt.Errorf("%s: reading the reply: %w", method, err)
	}
	if len(raw) > MaxResponse {
		return fmt.Errorf("%s: reply over %d MiB", method, MaxResponse>>20)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *RPCError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d from the node", method, resp.StatusCode)
		}
		return fmt.Errorf("%s: reply is not JSON-RPC: %v", method, err)
	}
	if env.Error != nil {
		env.Error.Message = safetext.Clip(env.Error.Message, 200)
		return env.Error
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d from the node", method, resp.StatusCode)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(env.Result, result); err != nil {
		return fmt.Errorf("%s: unexpected result: %v", method, err)
	}
	return nil
}

// isCode reports whether err is the node's RPC error code.
func isCode(err error, code int) bool {
	var re *RPCError
	return errors.As(err, &re) && re.Code == code
}
