package pooltest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"clminer/stratum/wire"
)

// Flood is a fake miner for soak tests: over one connection it subscribes,
// authorizes, and then submits shares as fast as the other end answers,
// each on the newest job it was sent and with a nonce it never used before.
// It hashes nothing, so the shares are valid only where every hash is a
// share (difficulty 1e-12 or so); it exists to push hundreds of thousands of
// shares through a pool or a proxy in seconds and count what they keep.
type Flood struct {
	c      net.Conn
	worker string
	window chan struct{}
	nonce  uint32
	w      *bufio.Writer

	mu      sync.Mutex
	job     NotifyParams
	size    int
	gotJob  chan struct{} // closed at the first job
	jobOnce sync.Once
	counts  FloodCounts
	jobCh   chan struct{} // closed and replaced at each job
	err     error
	done    chan struct{} // closed when the reader stops
}

// FloodCounts are the verdicts a Flood received.
type FloodCounts struct {
	Accepted int
	Rejected int
	Jobs     int // mining.notify lines
}

// DialFlood connects to addr and authorizes worker; up to window shares
// await a verdict at once.
func DialFlood(addr, worker string, window int) (*Flood, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	f := &Flood{c: c, worker: worker, window: make(chan struct{}, max(window, 1)), w: bufio.NewWriter(c),
		gotJob: make(chan struct{}), jobCh: make(chan struct{}), done: make(chan struct{})}
	go f.read()
	if err := f.send(1, wire.MethodSubscribe, "flood/1"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.send(2, wire.MethodAuthorize, worker, "x"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	select {
	case <-f.gotJob:
		return f, nil
	case <-f.done:
		f.Close()
		return nil, fmt.Errorf("flood: connection ended before the first job: %v", f.Err())
	case <-time.After(10 * time.Second):
		f.Close()
		return nil, errors.New("flood: no job within 10s")
	}
}

func (f *Flood) send(id uint32, method string, params ...any) error {
	b, err := wire.EncodeRequest(uint64(id), method, params)
	if err != nil {
		return err
	}
	_, err = f.w.Write(b)
	return err
}

func (f *Flood) read() {
	defer close(f.done)
	sc := bufio.NewScanner(f.c)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		var m struct {
			ID     *uint32         `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			f.fail(fmt.Errorf("flood: bad line %q: %v", sc.Text(), err))
			return
		}
		switch {
		case m.Method == wire.MethodNotify:
			p, err := ParseNotifyParams(m.Params)
			if err != nil {
				f.fail(err)
				return
			}
			f.mu.Lock()
			f.job = p
			f.counts.Jobs++
			close(f.jobCh)
			f.jobCh = make(chan struct{})
			ready := f.size > 0
			f.mu.Unlock()
			if ready {
				f.jobOnce.Do(func() { close(f.gotJob) })
			}
		case m.Method != "":
		case m.ID != nil && *m.ID == 1:
			var res []json.RawMessage
			var size int
			if json.Unmarshal(m.Result, &res) != nil || len(res) < 3 || json.Unmarshal(res[2], &size) != nil || size < 1 {
				f.fail(fmt.Errorf("flood: subscribe result %s", m.Result))
				return
			}
			f.mu.Lock()
			f.size = size
			ready := f.job.JobID != ""
			f.mu.Unlock()
			if ready {
				f.jobOnce.Do(func() { close(f.gotJob) })
			}
		case m.ID != nil && *m.ID == 2:
			if string(m.Result) != "true" {
				f.fail(fmt.Errorf("flood: authorize refused: %s", sc.Text()))
				return
			}
		case m.ID != nil:
			f.mu.Lock()
			if string(m.Result) == "true" {
				f.counts.Accepted++
			} else {
				f.counts.Rejected++
			}
			f.mu.Unlock()
			<-f.window
		}
	}
	f.fail(fmt.Errorf("flood: connection ended: %v", sc.Err()))
}

func (f *Flood) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// Submit sends n more shares and returns once each has its verdict.
func (f *Flood) Submit(n int) error {
	for i := 0; i < n; i++ {
		select {
		case f.window <- struct{}{}:
		case <-f.done:
			return f.Err()
		}
		f.mu.Lock()
		job, size := f.job, f.size
		f.mu.Unlock()
		f.nonce++
		// Ids 1 and 2 are the handshake's; a share's id is past them.
		err := f.send(f.nonce+2, wire.MethodSubmit, f.worker, job.JobID, strings.Repeat("00", size), job.NTime, fmt.Sprintf("%08x", f.nonce))
		if err == nil && len(f.window) == cap(f.window) {
			err = f.w.Flush()
		}
		if err != nil {
			return err
		}
	}
	if err := f.w.Flush(); err != nil {
		return err
	}
	for i := 0; i < cap(f.window); i++ {
		select {
		case f.window <- struct{}{}:
		case <-f.done:
			return f.Err()
		}
	}
	for i := 0; i < cap(f.window); i++ {
		<-f.window
	}
	return nil
}

// WaitJob waits up to d for a job beyond the first jobs ones received.
func (f *Flood) WaitJob(jobs int, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		f.mu.Lock()
		n, ch := f.counts.Jobs, f.jobCh
		f.mu.Unlock()
		if n > jobs {
			return nil
		}
		select {
		case <-ch:
		case <-f.done:
			return f.Err()
		case <-t.C:
			return fmt.Errorf("flood: no new job within %v", d)
		}
	}
}

// WaitCurrent waits until the current job is one that match accepts (a
// proxy renames jobs, but passes their content): jobs still in flight have
// arrived, and shares go on the newest.
func (f *Flood) WaitCurrent(match func(NotifyParams) bool, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		f.mu.Lock()
		cur, ch := f.job, f.jobCh
		f.mu.Unlock()
		if match(cur) {
			return nil
		}
		select {
		case <-ch:
		case <-f.done:
			return f.Err()
		case <-t.C:
			return fmt.Errorf("flood: the awaited job not current within %v (at %q)", d, cur.JobID)
		}
	}
}

// Counts returns the verdicts so far.
func (f *Flood) Counts() FloodCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// Err is why the connection failed, if it did.
func (f *Flood) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Close drops the connection and waits for its reader.
func (f *Flood) Close() {
	f.c.Close()
	<-f.done
}
