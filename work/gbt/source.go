package gbt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/log"

	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/option"
	"clminer/work/retry"
	"clminer/work/safetext"
	"clminer/work/source"
)

// Config is one node to mine solo on.
type Config struct {
	Endpoint
	// Address receives the block reward.
	Address string
	// VersionRolling lets devices roll the BIP 320 bits the template does
	// not signal on.
	VersionRolling bool
}

// Options tune the source; zero values get the defaults in brackets.
type Options struct {
	HTTPClient      *http.Client  // [a client with no overall timeout; calls use CallTimeout]
	Logger          *log.Logger   // [discard]
	CallTimeout     time.Duration // one RPC call [15 s]
	SubmitTimeout   time.Duration // submitblock [60 s]
	PollInterval    time.Duration // best-block poll when the node offers no longpoll [1 s]
	RefreshInterval time.Duration // a new template on the same tip (fees, time) [30 s]
	LongPollTimeout time.Duration // one longpoll request [10 min]
	Retry           retry.Backoff // between failed connects [1 s doubling to 60 s, ±20%]
	// Extranonce2Size is the bytes of the coinbase's extranonce the
	// consumer rolls [4; a proxy that splits it among miners wants 8],
	// at most MaxExtranonce2Size.
	Extranonce2Size int
}

func (o *Options) defaults() {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, ResponseHeaderTimeout: 0}}
	}
	if o.Logger == nil {
		o.Logger = log.New(io.Discard)
	}
	option.Default(&o.CallTimeout, 15*time.Second)
	option.Default(&o.SubmitTimeout, 60*time.Second)
	option.Default(&o.PollInterval, time.Second)
	option.Default(&o.RefreshInterval, 30*time.Second)
	option.Default(&o.LongPollTimeout, 10*time.Minute)
	o.Retry = o.Retry.WithDefaults()
	option.Default(&o.Extranonce2Size, extranonce2Size)
}

// ParseNodeURL checks a node URL: http or https, a host, no credentials
// (they go in -u/-p or --rpc-cookie, never in a URL that gets logged).
func ParseNodeURL(s string) (*url.URL, error) {
	// Messages quote the URL through safetext.URL: it may carry
	// user:password@ in any shape, parsable or not.
	q := safetext.URL(s)
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		// Not url.Parse's error: it quotes the URL whole.
		return nil, fmt.Errorf("node URL %q: not a valid URL; want http://host:port", q)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("node URL %q: want http://host:port (a node's RPC) or a stratum+tcp:// pool", q)
	}
	if u.User != nil {
		return nil, fmt.Errorf("node URL %q: put the RPC user and password in -u/-p or --rpc-cookie, not in the URL", q)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("node URL %q: no host", q)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("node URL %q: bad port", q)
		}
	}
	return u, nil
}

// IsNodeURL tells a node URL from a pool URL by its scheme, even when the
// rest does not parse (ParseNodeURL then says what is wrong).
func IsNodeURL(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// Source mines on one node.
type Source struct {
	cfg  Config
	opt  Options
	rpc  *rpcClient
	log  *log.Logger
	en1  []byte
	ldgr *ledger.Ledger

	// pause and refetch wake the run loop: a block was handed in (stop the
	// tip's work), or its verdict came (fetch the next template).
	pause, refetch chan struct{}
	wg             sync.WaitGroup // submitblock calls in flight

	mu        sync.Mutex
	session   uint64
	templates map[string]*issued // job id -> what it was built from (this tip only)
	order     []string
	// sentTips are the tips (previous block hashes) a block was sent on,
	// the newest maxSentTips of them: no other block on one is ever sent or
	// mined for, whatever the node's verdict. (A flag cleared at the verdict
	// let a candidate found before the verdict but handed in after it go
	// out as a second, competing block: Bitcoin Core answered
	// "inconclusive" and kept a stale tip of ours.)
	sentTips  map[[32]byte]bool
	sentOrder [][32]byte
	jobSeq    uint64
	tip       [32]byte
	closed    bool // Run has returned: no submit may start
	st        source.UpstreamStatus
	node      source.NodeStatus
}

// issued is one job and the template it came from.
type issued struct {
	t   *template
	job *work.Job
}

// maxIssued bounds the ledger's jobs; maxTemplates the templates kept for
// candidates still in flight (each holds up to 4 MB of transactions, and
// only the newest is hashed).
const (
	maxIssued    = 64
	maxTemplates = 8
)

// New validates cfg; it does not connect.
func New(cfg Config, opt Options) (*Source, error) {
	u, err := ParseNodeURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if err := CheckAddress(cfg.Address); err != nil {
		return nil, err
	}
	if cfg.Cookie == "" && cfg.User == "" {
		return nil, fmt.Errorf("node %s: give the RPC user and password (-u/-p) or --rpc-cookie PATH", safetext.URL(u.String()))
	}
	opt.defaults()
	if opt.Extranonce2Size < work.MinExtranonce2Size || opt.Extranonce2Size > MaxExtranonce2Size {
		return nil, fmt.Errorf("node %s: extranonce2 size %d: want %d..%d bytes", safetext.URL(u.String()), opt.Extranonce2Size, work.MinExtranonce2Size, MaxExtranonce2Size)
	}
	en1 := make([]byte, extranonce1Size)
	if _, err := rand.Read(en1); err != nil {
		return nil, err
	}
	s := &Source{
		cfg: cfg, opt: opt, rpc: &rpcClient{ep: cfg.Endpoint, http: opt.HTTPClient}, log: opt.Logger,
		en1: en1, ldgr: ledger.New(maxIssued),
		pause: make(chan struct{}, 1), refetch: make(chan struct{}, 1),
		templates: map[string]*issued{}, sentTips: map[[32]byte]bool{},
	}
	s.st = source.UpstreamStatus{Index: 0, URL: u.String(), Protocol: "getblocktemplate", Extranonce1: hex.EncodeToString(en1), Extranonce2Size: opt.Extranonce2Size}
	s.node = source.NodeStatus{RejectReasons: map[string]uint64{}}
	return s, nil
}

// Upstreams reports the node.
func (s *Source) Upstreams() []source.UpstreamStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	n := s.node
	n.RejectReasons = make(map[string]uint64, len(s.node.RejectReasons))
	for k, v := range s.node.RejectReasons {
		n.RejectReasons[k] = v
	}
	st.Node = &n
	return []source.UpstreamStatus{st}
}

// Run mines until ctx ends: connect, template, wait for a new tip or a
// refresh, again; a failure idles the devices and is retried with backoff.
func (s *Source) Run(ctx context.Context, sink source.Sink) error {
	defer func() {
		s.mu.Lock()
		s.closed = true // wg.Add happens under s.mu, so none follows the Wait
		s.mu.Unlock()
		s.wg.Wait()
	}()
	c := retry.Counter{Backoff: s.opt.Retry}
	return c.Redial(ctx, func(ctx context.Context) (bool, error) {
		s.setState(source.StateConnecting, "")
		sink.Event(s.event(source.EventConnecting, nil))
		return s.runSession(ctx, sink)
	}, func(err error, worked bool, wait time.Duration) {
		if worked {
			sink.NoWork("node: " + err.Error())
		}
		s.mu.Lock()
		s.st.Failures++
		s.st.LastError = err.Error()
		s.st.State = source.StateDown
		s.mu.Unlock()
		kind := source.EventDisconnected
		if errors.Is(err, ErrAuth) {
			kind = source.EventAuthFailed
		}
		sink.Event(s.event(kind, err))
		s.log.Warn("node unusable; retrying", "event", "node.down", "pool", s.st.URL, "err", err, "retry_in", wait)
	})
}

func (s *Source) event(k source.EventKind, err error) source.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Event(k, s.session, err)
}

func (s *Source) setState(st source.State, lastErr string) {
	s.mu.Lock()
	s.st.State = st
	if lastErr != "" {
		s.st.LastError = lastErr
	}
	s.mu.Unlock()
}

// chainInfo is the part of getblockchaininfo the source needs.
type chainInfo struct {
	Chain  string `json:"chain"`
	Blocks int64  `json:"blocks"`
	IBD    *bool  `json:"initialblockdownload"`
}

// errSyncing: the node is still catching up; its templates would build on
// an old tip.
var errSyncing = errors.New("the node is in initial block download; waiting for it to catch up")

// runSession is one connection's life. worked reports whether it gave the
// devices a job, so the caller idles them.
func (s *Source) runSession(ctx context.Context, sink source.Sink) (worked bool, err error) {
	var info chainInfo
	if err := s.call(ctx, "getblockchaininfo", nil, &info); err != nil {
		return false, err
	}
	// A fresh regtest node says it is in initial block download until its
	// first block, which only a miner can make; Bitcoin Core's own
	// getblocktemplate ignores the flag there.
	if info.IBD != nil && *info.IBD && info.Chain != "regtest" {
		return false, errSyncing
	}
	payout, err := payoutScript(s.cfg.Address, info.Chain)
	if err != nil {
		return false, err
	}
	rules := rulesFor(info.Chain)
	s.mu.Lock()
	s.session++
	sess := s.session
	s.st.Connects++
	s.st.State = source.StateActive
	s.node.Chain = info.Chain
	s.mu.Unlock()
	sink.Event(s.event(source.EventConnected, nil))
	sink.Event(s.event(source.EventAuthorized, nil))
	s.log.Info("node connected", "event", "node.connected", "pool", s.st.URL, "chain", info.Chain, "height", info.Blocks)

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tips := make(chan *template, 1) // a new template from the watcher (nil: fetch one)
	werr := make(chan error, 1)
	var t *template
	var watching sync.WaitGroup
	defer watching.Wait()
	defer cancel()
	started := false
	refresh := time.NewTimer(s.opt.RefreshInterval)
	defer refresh.Stop()
	for {
		if t == nil {
			if t, err = s.fetch(sctx, rules, ""); err != nil {
				return worked, err
			}
		}
		if !s.tipSpent(t.prev) {
			if err := s.publish(sink, sess, t, payout); err != nil {
				return worked, err
			}
			worked = true
		}
		if !started {
			started = true
			watching.Add(1)
			go func(first *template) {
				defer watching.Done()
				werr <- s.watch(sctx, rules, first, tips)
			}(t)
		}
		refresh.Reset(s.opt.RefreshInterval)
		t = nil
	wait:
		for {
			select {
			case <-ctx.Done():
				return worked, ctx.Err()
			case err := <-werr:
				return worked, err
			case <-s.pause:
				// Taken late (after the verdict and a new job), a pause
				// must not idle that job.
				if s.tipSpent(s.currentTip()) {
					sink.NoWork("block submitted on this tip; waiting for the node's next block")
				}
			case <-s.refetch:
				break wait
			case nt := <-tips:
				t = nt
				break wait
			case <-refresh.C:
				break wait
			}
		}
	}
}

// watch wakes the run loop on a new tip: by longpoll where the node offers
// it, else by polling the best block hash.
func (s *Source) watch(ctx context.Context, rules []string, first *template, tips chan *template) error {
	lpid, prev := first.longpoll, first.prev
	for ctx.Err() == nil {
		if lpid != "" {
			t, err := s.fetch(ctx, rules, lpid)
			if err == nil {
				lpid, prev = t.longpoll, t.prev
				offer(tips, t)
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, context.DeadlineExceeded) {
				continue // a quiet chain: the longpoll timed out; ask again
			}
			s.log.Debug("longpoll failed; polling the best block instead", "event", "node.longpoll_failed", "pool", s.st.URL, "err", err)
			lpid = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.opt.PollInterval):
		}
		var best string
		if err := s.call(ctx, "getbestblockhash", nil, &best); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		h, err := work.DisplayHashToInternal("getbestblockhash", best)
		if err != nil {
			return err
		}
		if h != prev {
			prev = h
			offer(tips, nil)
		}
	}
	return nil
}

// offer replaces whatever the run loop has not taken yet: only the newest
// template matters.
func offer(ch chan *template, t *template) {
	for {
		select {
		case ch <- t:
			return
		default:
			select {
			case <-ch:
			default:
			}
		}
	}
}

func (s *Source) call(ctx context.Context, method string, params []any, result any) error {
	cctx, cancel := context.WithTimeout(ctx, s.opt.CallTimeout)
	defer cancel()
	return s.rpc.call(cctx, method, params, result)
}

// fetch asks for a template (a longpoll when lpid is set) and validates it.
func (s *Source) fetch(ctx context.Context, rules []string, lpid string) (*template, error) {
	req := map[string]any{"rules": rules, "capabilities": []string{"coinbasevalue", "longpoll"}}
	timeout := s.opt.CallTimeout
	if lpid != "" {
		req["longpollid"] = lpid
		timeout = s.opt.LongPollTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var raw json.RawMessage
	if err := s.rpc.call(cctx, "getblocktemplate", []any{req}, &raw); err != nil {
		if isCode(err, codeInInitialDownload) {
			return nil, errSyncing
		}
		if isCode(err, codeClientNotConnected) {
			return nil, fmt.Errorf("the node has no peers, so its template may be on an old tip: %w", err)
		}
		return nil, err
	}
	return parseTemplate(raw)
}

// publish turns t into a job and hands it to the miner. A new tip forgets
// every job of the old one, so their candidates are stale at once.
func (s *Source) publish(sink source.Sink, sess uint64, t *template, payout []byte) error {
	s.mu.Lock()
	s.jobSeq++
	seq := s.jobSeq
	s.mu.Unlock()
	cb, err := buildCoinbase(t, payout, uint32(seq), s.opt.Extranonce2Size)
	if err != nil {
		return err
	}
	s.mu.Lock()
	id := "t" + strconv.FormatUint(seq, 10)
	clean := t.prev != s.tip || s.node.Height != t.height
	s.mu.Unlock()
	job, err := work.NewTemplateJob(work.TemplateParams{
		ID: id, PrevHash: t.prev, Coinb1: cb.coinb1, Extranonce1: s.en1, Coinb2: cb.coinb2,
		Branch: work.MerkleBranch(t.txids), Version: t.version, NBits: t.bits, NTime: t.ntime,
		Extranonce2Size: s.opt.Extranonce2Size,
	})
	if err != nil {
		return fmt.Errorf("template at height %d: %w", t.height, err)
	}
	mask := uint32(0)
	if s.cfg.VersionRolling {
		mask = t.rollMask
	}
	// From the in-hand check to the registration is one critical section
	// (the ledger's lock nests inside s.mu, as in Send): a block handed in
	// meanwhile cannot kill this job's fresh entry, nor see half a tip.
	s.mu.Lock()
	if s.sentTips[t.prev] {
		s.mu.Unlock()
		return nil
	}
	if clean {
		s.ldgr.Reset()
	}
	entry, err := s.ldgr.JobAtTarget(hex.EncodeToString(s.en1), id, s.opt.Extranonce2Size, t.target)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if clean {
		clear(s.templates)
		s.order = s.order[:0]
	}
	s.templates[id] = &issued{t: t, job: job}
	s.order = append(s.order, id)
	for len(s.order) > maxTemplates {
		delete(s.templates, s.order[0])
		s.order = s.order[1:]
	}
	s.tip = t.prev
	s.node.Height = t.height
	s.node.TemplateTime = time.Now()
	s.node.NetworkDifficulty = job.Difficulty
	s.node.Transactions = len(t.txs)
	s.st.Difficulty = job.Difficulty
	s.st.RollingMask = mask
	s.st.Failures, s.st.LastError = 0, "" // only work resets the backoff
	url := s.st.URL
	s.mu.Unlock()
	if clean {
		s.log.Info("new block template", "event", "node.template", "pool", url, "height", t.height,
			"transactions", len(t.txs), "difficulty", job.Difficulty, "bits", work.FormatUint32Hex(t.bits))
	}
	sink.Job(&source.Job{
		Job: job, Entry: entry, RollingMask: mask, Clean: clean, Received: time.Now(),
		Pool: 0, PoolURL: url, Session: sess, Worker: s.cfg.Address, BlocksOnly: true,
	})
	return nil
}

func (s *Source) currentTip() [32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tip
}

// tipSpent reports whether a block on tip prev was sent: no work on that
// tip could be submitted any more.
func (s *Source) tipSpent(prev [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentTips[prev]
}

// maxSentTips bounds sentTips: a tip this far behind the newest one sent
// has no templates left to mine.
const maxSentTips = 16

// Send submits a candidate that meets the network target as a block. The
// first candidate on a tip is the only block ever sent on it, whatever the
// verdict: the decision and the mark are one critical section, so of two
// candidates racing on a tip only one goes out, and one handed in after
// the verdict finds the mark still there. The tip's work stops at once.
func (s *Source) Send(sh source.Share, done func(source.Reply)) {
	header := sh.Unit.HeaderFor(sh.Nonce)
	hash := work.Sha256d(header[:])
	reply := source.Reply{
		Extranonce2: hex.EncodeToString(sh.Unit.Extranonce2),
		NTime:       work.FormatUint32Hex(sh.Unit.NTime),
	}
	if sh.Job.RollingMask != 0 {
		reply.VersionBits = work.FormatUint32Hex(work.VersionBits(sh.Unit.Version, sh.Job.RollingMask))
	}
	s.mu.Lock()
	is := s.templates[sh.Job.ID]
	if reason := s.unsendableLocked(is); reason != "" {
		s.mu.Unlock()
		reply.Kind, reply.Reason = source.NotSent, reason
		done(reply)
		return
	}
	t := is.t
	s.mu.Unlock()
	// The block is built and checked before the tip is spent: one that
	// fails here never reaches the node, so it competes with nothing and
	// the tip's next good block may still go.
	raw, err := s.assemble(t, header, sh)
	if err != nil {
		s.log.Error("block failed the host's own check; not submitted", "event", "block.invalid", "err", err)
		reply.Kind, reply.Reason = source.NotSent, "host check: "+err.Error()
		done(reply)
		return
	}
	s.mu.Lock()
	if is2 := s.templates[sh.Job.ID]; is2 != is {
		is = nil
	}
	if reason := s.unsendableLocked(is); reason != "" {
		s.mu.Unlock()
		reply.Kind, reply.Reason = source.NotSent, reason
		done(reply)
		return
	}
	s.sentTips[is.t.prev] = true
	s.sentOrder = append(s.sentOrder, is.t.prev)
	if len(s.sentOrder) > maxSentTips {
		delete(s.sentTips, s.sentOrder[0])
		s.sentOrder = s.sentOrder[1:]
	}
	if s.tip == is.t.prev {
		// Everything else found on this tip is a competing block of our
		// own: its work stops at once.
		s.ldgr.Reset()
	}
	s.node.BlocksSubmitted++
	s.st.InFlight++
	url := s.st.URL
	s.wg.Add(1)
	s.mu.Unlock()
	poke(s.pause)

	go func() {
		defer s.wg.Done()
		start := time.Now()
		kind, reason := s.submitBlock(raw, header)
		reply.Kind, reply.Reason, reply.RTT = kind, reason, time.Since(start)
		s.mu.Lock()
		s.st.InFlight--
		switch kind {
		case source.Accepted:
			s.node.BlocksAccepted++
			s.st.Accepted++
			s.node.LastBlock = work.HashDisplay(hash)
		case source.Rejected:
			s.node.BlocksRejected++
			s.st.Rejected++
			if _, ok := s.node.RejectReasons[reason]; ok || len(s.node.RejectReasons) < 32 {
				s.node.RejectReasons[reason]++
			} else {
				s.node.RejectReasons["other"]++
			}
		}
		s.mu.Unlock()
		lvl := s.log.Info
		if kind != source.Accepted {
			lvl = s.log.Error
		}
		lvl("block "+kind.String(), "event", "block."+kind.String(), "pool", url, "height", t.height,
			"hash", work.HashDisplay(hash), "reason", reason, "rtt", reply.RTT)
		poke(s.refetch)
		done(reply)
	}()
}

// unsendableLocked says why a block on template is may not be sent ("" if
// it may): the template is gone, or a block on its tip was already sent.
func (s *Source) unsendableLocked(is *issued) string {
	switch {
	case is == nil || s.closed:
		return "template no longer current"
	case s.sentTips[is.t.prev]:
		return "a block on this tip was already submitted"
	}
	return ""
}

// assemble builds the full block for a candidate and checks it as the node
// will: the header's hash against the target, the merkle root against the
// transactions.
func (s *Source) assemble(t *template, header [80]byte, sh source.Share) ([]byte, error) {
	cb, err := sh.Job.Coinbase(sh.Unit.Extranonce2)
	if err != nil {
		return nil, err
	}
	raw, err := block(t, header, cb)
	if err == nil {
		err = checkBlock(raw, t.target)
	}
	return raw, err
}

// submitBlock sends the block once and reads the verdict in either
// convention: BIP 22 (null, or a reason such as high-hash or duplicate) or
// btcd's ("rejected: ..."). When no verdict comes, the best block hash
// tells whether the node took it; the block is not sent again.
func (s *Source) submitBlock(raw []byte, header [80]byte) (source.ReplyKind, string) {
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.SubmitTimeout)
	defer cancel()
	var res *string
	hexBlock := hex.EncodeToString(raw)
	for {
		err = s.rpc.call(ctx, "submitblock", []any{hexBlock}, &res)
		// Sent again only when the node provably did not take it in: no
		// connection, its RPC queue full (HTTP 503), or still warming up
		// (-28). Any other failure may have reached it.
		if !notReceived(err) || ctx.Err() != nil {
			break
		}
		s.log.Warn("the node did not take the block in; trying again", "event", "block.retry", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err == nil {
		if res == nil || *res == "" {
			return source.Accepted, ""
		}
		return source.Rejected, safetext.Label(*res)
	}
	var re *RPCError
	if errors.As(err, &re) {
		return source.Rejected, safetext.Label(re.Message)
	}
	var best string
	hctx, hcancel := context.WithTimeout(context.Background(), s.opt.CallTimeout)
	defer hcancel()
	if s.rpc.call(hctx, "getbestblockhash", nil, &best) == nil && best == blockHash(header) {
		return source.Accepted, ""
	}
	return source.NoReply, err.Error()
}

// notReceived reports whether a submitblock call certainly did not reach
// the node's validation.
func notReceived(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, errBusy) || isCode(err, codeWarmingUp)
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
