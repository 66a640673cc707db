package pooltest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"clminer/stratum/wire"
	"clminer/work"
)

// ErrorFormat selects how share rejects are written, covering every format
// of stratum/PROTOCOL.md#errors.
type ErrorFormat int

// Reject formats.
const (
	ErrArray3     ErrorFormat = iota // {"result":false,"error":[code,"msg",null]}
	ErrArray2                        // {"result":false,"error":[code,"msg"]} (NOMP)
	ErrMinus2                        // {"result":null,"error":[-2,"msg",null]} (stratum-mining)
	ErrObject                        // {"result":false,"error":{"code":c,"message":"msg"}}
	ErrString                        // {"result":false,"error":"msg"}
	ErrBool                          // {"result":false,"error":true}
	ErrNullReason                    // {"result":false,"error":null,"reject-reason":"msg"} (ckpool)
	ErrMissingKey                    // {"result":false} (no error key)
)

// Behavior scripts misbehaviour.
type Behavior struct {
	RefuseAuth                 bool                     // authorize answers false with an error
	RefuseWorkers              []string                 // these worker names are refused (others authorize)
	NotifyBeforeSubscribeReply bool                     // set_difficulty and notify precede the subscribe reply
	NeverReply                 []string                 // methods never answered (NOMP style)
	ReplyDelay                 map[string]time.Duration // methods answered late
	RejectAll                  bool                     // every valid share is rejected too ("forced reject")
	RejectReason               string                   // the reason RejectAll gives ["forced reject"]
	// RejectResult, with RejectAll, answers every share with this raw JSON
	// as the result and a null error, sent byte for byte (bytes that are not
	// UTF-8 included), instead of ErrorFormat's reply.
	RejectResult   string
	ErrorFormat    ErrorFormat // format of share rejects
	RejectResume   bool        // subscribe with a session id gets an error
	SubscribeShape string      // "" (list of pairs), "single" (p2pool), "notify-only", "none"
	// DiffRule is the difficulty a share is judged at after a change.
	DiffRule DiffRule
	// ReconnectOnSubscribe answers every subscribe with client.reconnect []
	// and closes the connection (a redirect loop).
	ReconnectOnSubscribe bool
}

// DiffRule selects how a pool judges shares after mining.set_difficulty.
type DiffRule int

// Difficulty rules (stratum/PROTOCOL.md#difficulty).
const (
	// DiffLenient accepts shares meeting the lower of the job's and the
	// connection's current difficulty.
	DiffLenient DiffRule = iota
	// DiffCkpool judges the current job and the next one notified at the
	// old difficulty and later jobs at the new one (ckpool's
	// diff_change_job_id = workbase_id + 1, taken after the increment).
	DiffCkpool
	// DiffImmediate judges every share at the current difficulty
	// (public-pool).
	DiffImmediate
)

// Config configures a Server. Zero values get the defaults in brackets.
type Config struct {
	Addr             string        // [127.0.0.1:0]
	TLS              bool          // serve TLS with a generated self-signed certificate
	Extranonce1Size  int           // [4]
	Extranonce1      string        // fixed extranonce1 for every connection (vectors); "" = per connection
	Extranonce2Size  int           // [4]
	Difficulty       float64       // [1]
	VersionMask      uint32        // mask granted by mining.configure [0x1fffe000]
	NoVersionRolling bool          // answer configure with version-rolling false
	Job              *NotifyParams // first job; nil = generated
	NTimeWindow      uint32        // accepted ntime above the job's [7000]
	// Records is how many of the newest requests, shares and rejects are
	// kept for Requests, Shares and Rejects [65536]. Stats and AcceptedBy
	// count exactly whatever it is; `clminer demo`, which reads no record,
	// keeps few.
	Records  int
	Behavior Behavior
}

// Share is a share the server accepted.
type Share struct {
	Conn        int
	Worker      string
	JobID       string
	Extranonce2 string
	NTime       string
	Nonce       string
	VersionBits string
	Hash        string // display hex
	Difficulty  float64
}

// Reject is a rejected share.
type Reject struct {
	Conn   int
	JobID  string
	Code   int
	Reason string
}

// Stats counts what the server saw.
type Stats struct {
	Connections int
	Authorized  int
	Accepted    int
	Rejected    int // every reject, stale and duplicate included
	Stale       int
	Duplicate   int
}

// Request is a client request as received, for tests to inspect. Replies
// from the client (to ping, get_version) have an empty Method and the whole
// line in Params.
type Request struct {
	Conn   int
	Method string
	Params json.RawMessage
}

// serverJob is a job the pool still knows: shares for it are judged;
// shares for a job it forgot are "Job not found".
type serverJob struct {
	p   NotifyParams
	seq int
	// seen holds the header hash of every share accepted on the job, for
	// duplicates. It goes with the job (or at the next clean job, after
	// which the job's shares are stale before they are looked up), so the
	// pool's memory is what it holds for the jobs it knows.
	seen map[[32]byte]struct{}
}

type connJob struct {
	en1  string
	size int
	diff float64
}

type conn struct {
	id         int
	c          net.Conn
	wmu        sync.Mutex
	en1        string
	size       int
	pendingEN  *pendingExtranonce
	diff       float64
	subscribed bool
	authorized bool
	worker     string
	rolling    bool
	mask       uint32
	sid        string
	jobs       map[string]connJob
	sentJob    bool
	oldDiff    float64 // DiffCkpool: the value before the last change
	changeSeq  int     // DiffCkpool: jobs with seq below it are judged at oldDiff
}

// Server is an in-process Stratum v1 pool.
type Server struct {
	cfg Config
	ln  net.Listener
	fp  string

	mu       sync.Mutex
	conns    map[int]*conn
	nextConn int
	jobs     map[string]*serverJob
	current  string
	seq      int
	cleanSeq int
	jobCount int
	diff     float64
	stalled  bool
	stats    Stats
	shares   []Share
	rejects  []Reject
	requests []Request
	records  int
	seenKeys int // duplicate-set entries over all known jobs
	// Bounds on the duplicate sets: maxSeenKeys and maxJobSeenKeys (tests
	// lower them).
	maxKeys, maxJobKeys int
	byWorker            map[string]int    // accepted shares per worker name, bounded
	resume              map[string]string // session id -> extranonce1, bounded
	resumeOrder         [maxResume]string // ring of resume's keys, oldest at resumeNext
	resumeNext          int
	en1Count            uint32

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New prepares a server; Start listens.
func New(cfg Config) *Server {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Extranonce1Size <= 0 {
		cfg.Extranonce1Size = 4
	}
	if cfg.Extranonce1 != "" {
		cfg.Extranonce1Size = len(cfg.Extranonce1) / 2
	}
	if cfg.Extranonce2Size <= 0 {
		cfg.Extranonce2Size = 4
	}
	if cfg.Difficulty <= 0 {
		cfg.Difficulty = 1
	}
	if cfg.VersionMask == 0 {
		cfg.VersionMask = work.BIP320Mask
	}
	if cfg.NTimeWindow == 0 {
		cfg.NTimeWindow = 7000
	}
	if cfg.Records <= 0 {
		cfg.Records = maxRecorded
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, conns: map[int]*conn{}, jobs: map[string]*serverJob{}, diff: cfg.Difficulty,
		records: cfg.Records, maxKeys: maxSeenKeys, maxJobKeys: maxJobSeenKeys,
		byWorker: map[string]int{}, resume: map[string]string{}, ctx: ctx, cancel: cancel}
	if cfg.Job != nil {
		s.addJobLocked(*cfg.Job)
	} else {
		s.addJobLocked(GenerateJob(s.nextJobIDLocked(), cfg.Extranonce1Size, cfg.Extranonce2Size, true))
	}
	return s
}

// Start listens and serves until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	if s.cfg.TLS {
		cert, fp, err := selfSigned()
		if err != nil {
			ln.Close()
			return err
		}
		s.fp = fp
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.serve(c)
		}
	}()
	return nil
}

// Close stops the server, drops every connection and waits for all its
// goroutines.
func (s *Server) Close() {
	s.cancel()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Lock()
	for _, c := range s.conns {
		c.c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Addr is host:port of the listener.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the pool URL for the client.
func (s *Server) URL() string {
	if s.cfg.TLS {
		return "stratum+tls://" + s.Addr()
	}
	return "stratum+tcp://" + s.Addr()
}

// Fingerprint is the SHA-256 (hex) of the TLS certificate; "" without TLS.
func (s *Server) Fingerprint() string { return s.fp }

func selfSigned() (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "pooltest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, hex.EncodeToString(sum[:]), nil
}

func (s *Server) nextJobIDLocked() string {
	s.jobCount++
	return strconv.FormatInt(int64(s.jobCount), 16)
}

func (s *Server) addJobLocked(p NotifyParams) {
	s.seq++
	if p.CleanJobs {
		s.cleanSeq = s.seq
		// Shares for jobs before a clean one are stale before they are
		// looked up as duplicates: their duplicate sets can go. A set is
		// dropped, not cleared, since a cleared map keeps its buckets.
		for _, j := range s.jobs {
			s.seenKeys -= len(j.seen)
			j.seen = nil
		}
	}
	// The last few jobs stay known so that late shares for them count as
	// stale rather than unknown; older ones go, keeping a long demo bounded.
	for id, j := range s.jobs {
		if j.seq < s.seq-keptOldJobs {
			s.forgetJobLocked(id, j)
		}
	}
	j := &serverJob{p: p, seq: s.seq}
	if old := s.jobs[p.JobID]; old != nil {
		// A job sent again under its id (a re-issue) is the same work to
		// the pool: the shares it has stay duplicates.
		j.seen = old.seen
	}
	s.jobs[p.JobID] = j
	s.current = p.JobID
}

func (s *Server) forgetJobLocked(id string, j *serverJob) {
	s.seenKeys -= len(j.seen)
	j.seen = nil
	delete(s.jobs, id)
}

// rememberLocked adds a share's header hash to its job's duplicate set.
// Past maxKeys over all jobs, the oldest jobs but the current one are
// forgotten whole (their shares become "Job not found", as on a pool whose
// job history ran out), never single keys, so a duplicate of a share on a
// job still known is always caught. It reports whether the current job's
// own set is full: then the pool must move its miners to a fresh job.
func (s *Server) rememberLocked(id string, j *serverJob, hash [32]byte) (full bool) {
	if j.seen == nil {
		j.seen = map[[32]byte]struct{}{}
	}
	j.seen[hash] = struct{}{}
	s.seenKeys++
	for s.seenKeys > s.maxKeys {
		oldID, old := "", (*serverJob)(nil)
		for oid, o := range s.jobs {
			if oid != s.current && (old == nil || o.seq < old.seq) {
				oldID, old = oid, o
			}
		}
		if old == nil {
			break
		}
		s.forgetJobLocked(oldID, old)
	}
	return id == s.current && len(j.seen) >= s.maxJobKeys
}

func (s *Server) serve(nc net.Conn) {
	s.mu.Lock()
	s.nextConn++
	c := &conn{id: s.nextConn, c: nc, size: s.cfg.Extranonce2Size, diff: s.diff, jobs: map[string]connJob{}}
	s.en1Count++
	c.en1 = s.cfg.Extranonce1
	if c.en1 == "" {
		b := make([]byte, s.cfg.Extranonce1Size)
		for i := 0; i < len(b) && i < 4; i++ {
			b[len(b)-1-i] = byte(s.en1Count >> (8 * i))
		}
		c.en1 = hex.EncodeToString(b)
	}
	c.sid = fmt.Sprintf("%08x%s", s.en1Count, randHex(4))
	s.conns[c.id] = c
	s.stats.Connections++
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			nc.Close()
			s.mu.Lock()
			delete(s.conns, c.id)
			s.keepResumeLocked(c.sid, c.en1)
			s.mu.Unlock()
		}()
		sc := bufio.NewScanner(nc)
		sc.Buffer(make([]byte, 4096), 16<<10)
		for sc.Scan() {
			s.handle(c, sc.Bytes())
		}
	}()
}

// send writes a line unless the server is stalled.
func (s *Server) send(c *conn, v any) {
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled {
		return
	}
	switch l := v.(type) {
	case rawLine:
		s.sendRaw(c, []byte(string(l)+"\n"))
		return
	case encoded:
		if l != nil {
			s.sendRaw(c, l)
		}
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.sendRaw(c, append(b, '\n'))
}

func (s *Server) sendRaw(c *conn, b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.c.Write(b)
}

type msg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// oddReply is a response whose error member is in one of the shapes of
// stratum/PROTOCOL.md#errors that package wire does not write (a pair, an
// object, a bare string, a boolean): the pool's scripted misbehaviour.
type oddReply struct {
	ID     json.RawMessage `json:"id"`
	Result any             `json:"result"`
	Error  any             `json:"error"`
}

// encoded is a line written by package wire, newline included; nil when
// it could not be encoded (send skips it).
type encoded []byte

func response(id json.RawMessage, result any, rpcErr *wire.Error) encoded {
	b, _ := wire.EncodeResponse(id, result, rpcErr)
	return b
}

func notification(method string, params ...any) encoded {
	b, _ := wire.EncodeNotification(method, params)
	return b
}

func (s *Server) handle(c *conn, line []byte) {
	var m msg
	if err := json.Unmarshal(line, &m); err != nil {
		return
	}
	s.mu.Lock()
	if m.Method == "" {
		// a reply to a server request (ping, get_version): keep the line
		s.requests = keepRecent(s.requests, Request{Conn: c.id, Method: "", Params: append(json.RawMessage(nil), line...)}, s.records)
	} else {
		s.requests = keepRecent(s.requests, Request{Conn: c.id, Method: m.Method, Params: append(json.RawMessage(nil), m.Params...)}, s.records)
	}
	bh := s.cfg.Behavior
	s.mu.Unlock()
	for _, nr := range bh.NeverReply {
		if nr == m.Method {
			return
		}
	}
	var params []json.RawMessage
	_ = json.Unmarshal(m.Params, &params)
	var out []any // lines to send, in order
	switch m.Method {
	case wire.MethodConfigure:
		if s.cfg.NoVersionRolling {
			out = append(out, response(m.ID, map[string]any{"version-rolling": false}, nil))
			break
		}
		s.mu.Lock()
		c.rolling, c.mask = true, s.cfg.VersionMask
		s.mu.Unlock()
		out = append(out, response(m.ID, map[string]any{"version-rolling": true, "version-rolling.mask": fmt.Sprintf("%08x", s.cfg.VersionMask)}, nil))
	case wire.MethodSubscribe:
		if bh.ReconnectOnSubscribe {
			s.send(c, notification(wire.MethodReconnect))
			c.c.Close()
			return
		}
		s.mu.Lock()
		if len(params) > 1 {
			var sid string
			_ = json.Unmarshal(params[1], &sid)
			if bh.RejectResume {
				s.mu.Unlock()
				s.later(c, bh, m.Method, []any{response(m.ID, nil, wire.NewError(wire.CodeOther, "session resume not supported"))})
				return
			}
			if en1, ok := s.resume[sid]; ok && s.cfg.Extranonce1 == "" {
				c.en1, c.sid = en1, sid
			}
		}
		c.subscribed = true
		var subs any
		switch bh.SubscribeShape {
		case "single":
			subs = []any{wire.MethodNotify, c.sid}
		case "notify-only":
			subs = []any{[]any{wire.MethodNotify, c.sid}}
		case "none":
			subs = []any{}
		default:
			subs = []any{[]any{wire.MethodSetDifficulty, c.sid}, []any{wire.MethodNotify, c.sid}}
		}
		res := []any{subs, c.en1, c.size}
		var pre []any
		if bh.NotifyBeforeSubscribeReply {
			pre = s.jobLinesLocked(c, true)
		}
		s.mu.Unlock()
		out = append(pre, response(m.ID, res, nil))
	case wire.MethodAuthorize:
		var user string
		if len(params) > 0 {
			_ = json.Unmarshal(params[0], &user)
		}
		refused := bh.RefuseAuth
		for _, w := range bh.RefuseWorkers {
			refused = refused || w == user
		}
		if refused {
			out = append(out, response(m.ID, false, wire.NewError(wire.CodeUnauthorized, "Unauthorized worker")))
			break
		}
		s.mu.Lock()
		c.authorized, c.worker = true, user
		s.stats.Authorized++
		var post []any
		if !c.sentJob {
			post = s.jobLinesLocked(c, true)
		}
		s.mu.Unlock()
		out = append([]any{response(m.ID, true, nil)}, post...)
	case wire.MethodExtranonceSubscribe:
		out = append(out, response(m.ID, true, nil))
	case wire.MethodSuggestDifficulty:
		out = append(out, response(m.ID, true, nil))
	case wire.MethodSubmit:
		rep, refresh := s.submit(c, m.ID, params)
		out = append(out, rep)
		if refresh != "" {
			defer s.refreshJob(refresh)
		}
	default:
		if m.Method != "" {
			out = append(out, response(m.ID, nil, wire.NewError(wire.CodeMethodNotFound, "Method '"+m.Method+"' not found")))
		}
	}
	s.later(c, bh, m.Method, out)
}

// later sends lines now or after the scripted delay for method.
func (s *Server) later(c *conn, bh Behavior, method string, lines []any) {
	d := bh.ReplyDelay[method]
	if d <= 0 {
		for _, l := range lines {
			s.send(c, l)
		}
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		for _, l := range lines {
			s.send(c, l)
		}
	}()
}

// jobLinesLocked returns set_difficulty + notify for the current job and
// records what the connection knows about it.
func (s *Server) jobLinesLocked(c *conn, clean bool) []any {
	c.sentJob = true
	j := s.jobs[s.current]
	p := j.p
	p.CleanJobs = p.CleanJobs || clean
	return []any{notification(wire.MethodSetDifficulty, c.diff), s.notifyLocked(c, p)}
}

func (s *Server) notifyLocked(c *conn, p NotifyParams) encoded {
	if c.pendingEN != nil {
		c.en1, c.size = c.pendingEN.en1, c.pendingEN.size
		c.pendingEN = nil
	}
	c.jobs[p.JobID] = connJob{en1: c.en1, size: c.size, diff: c.diff}
	for id := range c.jobs {
		if _, known := s.jobs[id]; !known {
			delete(c.jobs, id)
		}
	}
	return notification(wire.MethodNotify, p.Array()...)
}

func (s *Server) broadcast(f func(c *conn) []any) {
	s.mu.Lock()
	type item struct {
		c     *conn
		lines []any
	}
	var items []item
	for _, c := range s.conns {
		if !c.subscribed {
			continue
		}
		items = append(items, item{c, f(c)})
	}
	s.mu.Unlock()
	for _, it := range items {
		for _, l := range it.lines {
			s.send(it.c, l)
		}
	}
}

// refreshJob sends a fresh job (not clean) if id is still the current job
// and its duplicate set is full, as a pool hands out new work long before a
// job's share space runs out: old jobs, and their sets, then age out.
func (s *Server) refreshJob(id string) {
	s.mu.Lock()
	j := s.jobs[id]
	if s.current != id || j == nil || len(j.seen) < s.maxJobKeys {
		s.mu.Unlock()
		return
	}
	p := GenerateJob(s.nextJobIDLocked(), s.cfg.Extranonce1Size, s.cfg.Extranonce2Size, false)
	s.addJobLocked(p)
	s.mu.Unlock()
	s.broadcast(func(c *conn) []any {
		if !c.sentJob {
			// A connection's first job comes with its difficulty, as at
			// authorize: a job pushed between a miner's subscribe and its
			// authorize must not leave it at the protocol's default of 1.
			c.sentJob = true
			return []any{notification(wire.MethodSetDifficulty, c.diff), s.notifyLocked(c, p)}
		}
		return []any{s.notifyLocked(c, p)}
	})
}

// PushJob generates a new job, sends it to every subscribed connection and
// returns its id.
func (s *Server) PushJob(clean bool) string {
	s.mu.Lock()
	p := GenerateJob(s.nextJobIDLocked(), s.cfg.Extranonce1Size, s.cfg.Extranonce2Size, clean)
	s.mu.Unlock()
	s.PushJobParams(p)
	return p.JobID
}

// PushJobParams sends a given job (its CleanJobs flag decides staleness).
func (s *Server) PushJobParams(p NotifyParams) {
	s.mu.Lock()
	s.addJobLocked(p)
	s.mu.Unlock()
	s.broadcast(func(c *conn) []any {
		if !c.sentJob {
			// A connection's first job comes with its difficulty, as at
			// authorize: a job pushed between a miner's subscribe and its
			// authorize must not leave it at the protocol's default of 1.
			c.sentJob = true
			return []any{notification(wire.MethodSetDifficulty, c.diff), s.notifyLocked(c, p)}
		}
		return []any{s.notifyLocked(c, p)}
	})
}

// CurrentJob returns the current job's params.
func (s *Server) CurrentJob() NotifyParams {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[s.current].p
}

// SetDifficulty sends mining.set_difficulty; like ckpool, jobs already sent
// keep the difficulty they were sent with, and shares meeting the lower of
// that and the current difficulty are accepted.
func (s *Server) SetDifficulty(d float64) {
	s.mu.Lock()
	s.diff = d
	s.mu.Unlock()
	s.mu.Lock()
	seq := s.seq
	s.mu.Unlock()
	s.broadcast(func(c *conn) []any {
		c.oldDiff, c.changeSeq, c.diff = c.diff, seq+2, d
		return []any{notification(wire.MethodSetDifficulty, d)}
	})
}

// SetBehavior changes the scripted behaviour while the server runs (a pool
// that starts refusing the worker, stops answering submits, ...).
func (s *Server) SetBehavior(f func(b *Behavior)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.cfg.Behavior)
}

// SetExtranonce sends mining.set_extranonce; it applies from the next job.
func (s *Server) SetExtranonce(en1 string, size int) {
	s.broadcast(func(c *conn) []any {
		c.pendingEN = &pendingExtranonce{en1: en1, size: size}
		return []any{notification(wire.MethodSetExtranonce, en1, size)}
	})
}

// SetVersionMask sends mining.set_version_mask; it applies at once.
func (s *Server) SetVersionMask(mask uint32) {
	s.broadcast(func(c *conn) []any {
		c.mask = mask
		return []any{notification(wire.MethodSetVersionMask, fmt.Sprintf("%08x", mask))}
	})
}

// Reconnect sends client.reconnect(host, port, wait).
func (s *Server) Reconnect(host string, port any, wait int) {
	s.broadcast(func(c *conn) []any { return []any{notification(wire.MethodReconnect, host, port, wait)} })
}

// ShowMessage sends client.show_message.
func (s *Server) ShowMessage(text string) {
	s.broadcast(func(c *conn) []any { return []any{notification(wire.MethodShowMessage, text)} })
}

// SendRaw writes a raw line (a newline is added) to every subscribed
// connection: garbage, pings, get_version, odd formats.
func (s *Server) SendRaw(line string) {
	s.broadcast(func(c *conn) []any { return []any{rawLine(line)} })
}

// SendEndless writes n bytes without a newline to every connection, in the
// background; the client should drop the connection.
func (s *Server) SendEndless(n int) {
	s.mu.Lock()
	var cs []*conn
	for _, c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		s.wg.Add(1)
		go func(c *conn) {
			defer s.wg.Done()
			chunk := []byte(strings.Repeat("a", 4096))
			for sent := 0; sent < n; sent += len(chunk) {
				c.wmu.Lock()
				_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, err := c.c.Write(chunk)
				c.wmu.Unlock()
				if err != nil {
					return
				}
			}
		}(c)
	}
}

// Stall stops (true) or resumes (false) everything the server sends.
func (s *Server) Stall(on bool) {
	s.mu.Lock()
	s.stalled = on
	s.mu.Unlock()
}

// DropAll closes every connection.
func (s *Server) DropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.c.Close()
	}
}

// Conns is the number of open connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// AcceptedBy is how many shares were accepted under worker (exact for the
// first maxWorkerCounts names seen; later names are not counted by name).
func (s *Server) AcceptedBy(worker string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byWorker[worker]
}

// Shares returns the accepted shares (at least the newest Config.Records).
func (s *Server) Shares() []Share {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Share(nil), s.shares...)
}

// Rejects returns the rejected shares (at least the newest Config.Records).
func (s *Server) Rejects() []Reject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reject(nil), s.rejects...)
}

// Requests returns the requests received, in order (at least the newest
// Config.Records).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

type shareErr struct {
	code   int
	reason string
	kind   string // "stale", "duplicate" or ""
}

// submit judges a share; refresh is the id of the current job when the
// share filled its duplicate set (see refreshJob).
func (s *Server) submit(c *conn, id json.RawMessage, params []json.RawMessage) (rep any, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh, serr := s.checkShareLocked(c, params)
	bh := s.cfg.Behavior
	if serr == nil && bh.RejectAll {
		serr = &shareErr{code: wire.CodeOther, reason: "forced reject"}
		if bh.RejectReason != "" {
			serr.reason = bh.RejectReason
		}
	}
	if serr != nil {
		s.stats.Rejected++
		switch serr.kind {
		case "stale":
			s.stats.Stale++
		case "duplicate":
			s.stats.Duplicate++
		}
		s.rejects = keepRecent(s.rejects, Reject{Conn: c.id, JobID: sh.JobID, Code: serr.code, Reason: serr.reason}, s.records)
		if bh.RejectAll && bh.RejectResult != "" {
			return rawLine(`{"id":` + string(id) + `,"result":` + bh.RejectResult + `,"error":null}`), ""
		}
		return rejectReply(id, bh.ErrorFormat, serr), ""
	}
	s.stats.Accepted++
	if _, ok := s.byWorker[sh.Worker]; ok || len(s.byWorker) < maxWorkerCounts {
		s.byWorker[sh.Worker]++
	}
	s.shares = keepRecent(s.shares, sh.Share, s.records)
	if sh.full {
		refresh = sh.JobID
	}
	return response(id, true, nil), refresh
}

func rejectReply(id json.RawMessage, f ErrorFormat, e *shareErr) any {
	switch f {
	case ErrArray2:
		return oddReply{id, false, []any{e.code, e.reason}}
	case ErrMinus2:
		return response(id, nil, wire.NewError(wire.CodeService, e.reason))
	case ErrObject:
		return oddReply{id, false, map[string]any{"code": e.code, "message": e.reason}}
	case ErrString:
		return oddReply{id, false, e.reason}
	case ErrBool:
		return oddReply{id, false, true}
	case ErrNullReason:
		return map[string]any{"id": id, "result": false, "error": nil, "reject-reason": e.reason}
	case ErrMissingKey:
		return map[string]any{"id": id, "result": false}
	}
	return response(id, false, wire.NewError(e.code, e.reason))
}

// checkedShare is a share judged valid; full is rememberLocked's report.
type checkedShare struct {
	Share
	full bool
}

func (s *Server) checkShareLocked(c *conn, params []json.RawMessage) (checkedShare, *shareErr) {
	sh := checkedShare{Share: Share{Conn: c.id}}
	if !c.authorized {
		return sh, &shareErr{code: wire.CodeUnauthorized, reason: "Unauthorized worker"}
	}
	if len(params) < 5 || len(params) > 6 {
		return sh, &shareErr{code: wire.CodeOther, reason: fmt.Sprintf("want 5 or 6 params, got %d", len(params))}
	}
	str := make([]string, len(params))
	for i, p := range params {
		if err := json.Unmarshal(p, &str[i]); err != nil {
			return sh, &shareErr{code: wire.CodeOther, reason: fmt.Sprintf("param %d is not a string", i)}
		}
	}
	sh.Worker, sh.JobID, sh.Extranonce2, sh.NTime, sh.Nonce = str[0], str[1], str[2], str[3], str[4]
	sj, ok := s.jobs[sh.JobID]
	cj, ok2 := c.jobs[sh.JobID]
	if !ok || !ok2 {
		return sh, &shareErr{code: wire.CodeJobNotFound, reason: "Job not found"}
	}
	if sj.seq < s.cleanSeq {
		return sh, &shareErr{code: wire.CodeJobNotFound, reason: "Stale", kind: "stale"}
	}
	if len(sh.Extranonce2) != 2*cj.size {
		return sh, &shareErr{code: wire.CodeOther, reason: "Incorrect size of extranonce2"}
	}
	en2, err := hex.DecodeString(sh.Extranonce2)
	if err != nil {
		return sh, &shareErr{code: wire.CodeOther, reason: "extranonce2 is not hex"}
	}
	if len(sh.Nonce) != 8 {
		return sh, &shareErr{code: wire.CodeOther, reason: "nonce must be 8 hex chars"}
	}
	nonce, err := work.ParseUint32Hex("nonce", sh.Nonce)
	if err != nil {
		return sh, &shareErr{code: wire.CodeOther, reason: "nonce is not hex"}
	}
	ntime, err := work.ParseUint32Hex("ntime", sh.NTime)
	if err != nil {
		return sh, &shareErr{code: wire.CodeOther, reason: "ntime must be 8 hex chars"}
	}
	job, err := work.NewJob(work.JobParams{JobID: sj.p.JobID, PrevHash: sj.p.PrevHash, Coinb1: sj.p.Coinb1, Coinb2: sj.p.Coinb2,
		MerkleBranch: sj.p.MerkleBranch, Version: sj.p.Version, NBits: sj.p.NBits, NTime: sj.p.NTime,
		Extranonce1: cj.en1, Extranonce2Size: cj.size, Difficulty: cj.diff})
	if err != nil {
		return sh, &shareErr{code: wire.CodeOther, reason: "job rebuild: " + err.Error()}
	}
	if ntime < job.NTime || ntime > job.NTime+s.cfg.NTimeWindow {
		return sh, &shareErr{code: wire.CodeOther, reason: "Ntime out of range"}
	}
	version := job.Version
	if len(str) == 6 {
		sh.VersionBits = str[5]
		if !c.rolling {
			return sh, &shareErr{code: wire.CodeOther, reason: "version rolling not negotiated"}
		}
		bits, err := work.ParseUint32Hex("version_bits", str[5])
		if err != nil {
			return sh, &shareErr{code: wire.CodeOther, reason: "version bits must be 8 hex chars"}
		}
		if bits&^c.mask != 0 {
			return sh, &shareErr{code: wire.CodeVersionMask, reason: "Invalid version mask"}
		}
		version = job.Version&^c.mask | bits&c.mask
	}
	u, err := job.NewUnit(en2, version, ntime)
	if err != nil {
		return sh, &shareErr{code: wire.CodeOther, reason: err.Error()}
	}
	chk := u.Check(nonce)
	sh.Hash = work.HashDisplay(chk.Hash)
	sh.Difficulty = chk.Difficulty
	d := cj.diff
	switch s.cfg.Behavior.DiffRule {
	case DiffCkpool:
		d = c.diff
		if sj.seq < c.changeSeq {
			d = c.oldDiff
		}
	case DiffImmediate:
		d = c.diff
	default:
		if c.diff < d {
			d = c.diff
		}
	}
	target, err := work.TargetForDifficulty(d)
	if err != nil || !target.Met(chk.Hash) {
		return sh, &shareErr{code: wire.CodeLowDifficulty, reason: fmt.Sprintf("Low difficulty share of %g", chk.Difficulty)}
	}
	// The header hash is the share: equal headers are one share however
	// the hex was spelled, and two connections' shares (other extranonce1)
	// never collide.
	if _, dup := sj.seen[chk.Hash]; dup {
		return sh, &shareErr{code: wire.CodeDuplicate, reason: "Duplicate share", kind: "duplicate"}
	}
	sh.full = s.rememberLocked(sh.JobID, sj, chk.Hash)
	return sh, nil
}

type rawLine string

// pendingExtranonce is a set_extranonce sent to a client, applied to the
// connection's own view from the next job on, as the client applies it.
type pendingExtranonce struct {
	en1  string
	size int
}

// keptOldJobs is how many jobs before the newest stay known, so that late
// shares for them are judged (accepted, or stale after a clean job) rather
// than rejected as unknown.
const keptOldJobs = 32

// maxRecorded is the default bound of each record the server keeps for
// inspection (requests, shares, rejects). Stats keeps exact counts
// regardless.
const maxRecorded = 1 << 16

// Bounds on what the pool keeps per share, for `clminer demo`, which runs
// this server for as long as the user likes at up to hundreds of shares a
// second (and for any client, however fast it submits).
const (
	// maxSeenKeys bounds the duplicate sets of all known jobs together (a
	// few MB of 32-byte header hashes).
	maxSeenKeys = 1 << 16
	// maxJobSeenKeys is how many shares one job collects before the pool
	// sends a fresh job (shares on it are still judged until it is
	// forgotten), so that no one job can hold maxSeenKeys by itself.
	maxJobSeenKeys = maxSeenKeys / 4
	// maxWorkerCounts bounds the per-name counters of AcceptedBy.
	maxWorkerCounts = 1024
	// maxResume bounds the session ids kept for resuming (one per
	// connection that ever closed).
	maxResume = 1024
)

// keepResumeLocked remembers that session sid had extranonce1 en1, for a
// client resuming it, forgetting the oldest beyond maxResume.
func (s *Server) keepResumeLocked(sid, en1 string) {
	if _, ok := s.resume[sid]; !ok {
		if old := s.resumeOrder[s.resumeNext]; old != "" {
			delete(s.resume, old)
		}
		s.resumeOrder[s.resumeNext] = sid
		s.resumeNext = (s.resumeNext + 1) % maxResume
	}
	s.resume[sid] = en1
}

// keepRecent appends v, dropping the oldest half once the slice holds twice
// limit, so appends stay amortized O(1) and memory stays bounded.
func keepRecent[T any](s []T, v T, limit int) []T {
	if len(s) >= 2*limit {
		s = append(s[:0], s[len(s)-limit:]...)
	}
	return append(s, v)
}
