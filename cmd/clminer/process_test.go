package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"clminer/internal/testkit"
	"clminer/stratum/pooltest"
)

// mainEnv makes the test binary run clminer's main instead of the tests:
// what only a whole process shows (signals, a terminal, a broken pipe) is
// tested on the real main, without building another binary.
const mainEnv = "CLMINER_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// clminerExe is the program that runs as clminer when mainEnv=1 is in its
// environment.
func clminerExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return exe
}

// proc is a child process whose output lines the test waits on.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	tick  chan struct{}
	done  chan struct{}
	err   error // the exit, once done is closed
}

// startProc starts cmd with its stdout and stderr read line by line, and
// kills it (its process group, when it has one) if the test ends first.
func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, tick: make(chan struct{}, 1), done: make(chan struct{})}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	require.NoError(t, cmd.Start())
	go p.read(r)
	go func() {
		p.err = cmd.Wait()
		w.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		if cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		} else {
			_ = cmd.Process.Kill()
		}
		<-p.done
		t.Logf("killed; output:\n%s", p.output())
	})
	return p
}

func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, strings.TrimRight(sc.Text(), "\r"))
		p.mu.Unlock()
		select {
		case p.tick <- struct{}{}:
		default:
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// count is how many output lines so far contain s.
func (p *proc) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// waitCount blocks until n output lines contain s; the process ending
// first, or 60 s passing, fails the test.
func (p *proc) waitCount(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for p.count(s) < n {
		select {
		case <-p.tick:
		case <-p.done:
			if p.count(s) >= n {
				return
			}
			t.Fatalf("the process ended (%v) before %d lines with %q; output:\n%s", p.err, n, s, p.output())
		case <-deadline:
			t.Fatalf("no %d lines with %q in 60 s; output:\n%s", n, s, p.output())
		}
	}
}

// wait returns the process's exit, failing the test after 60 s.
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(60 * time.Second):
		t.Fatalf("the process did not exit in 60 s; output:\n%s", p.output())
		return nil
	}
}

func mainCmd(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(clminerExe(t), args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1", "XDG_CACHE_HOME="+t.TempDir())
	return cmd
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// SIGHUP, as logrotate's postrotate sends it after moving the files away,
// makes a running miner write a new --log-file and --share-log and keeps it
// mining; SIGTERM then drains and logs the summary into the new log file.
func TestSIGHUPReopensLogFiles(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0002})
	dir := t.TempDir()
	logPath, sharePath := filepath.Join(dir, "clminer.log"), filepath.Join(dir, "shares.jsonl")
	p := startProc(t, mainCmd(t, "--log-format", "json", "mine", "-o", pool.URL(), "-u", "wallet.rig1",
		"--device", "cpu", "--threads", "1", "--status-interval", "0", "--drain-timeout", "2s", "--best-share-file", "-",
		"--log-file", logPath, "--share-log", sharePath))
	p.waitCount(t, `"event":"share.accepted"`, 1)
	// The share log's line comes from the miner's observer, after the log
	// event: a reopen that overtakes it sends it to the new file, rightly,
	// and leaves the moved one empty. The test rotates once it is written.
	testkit.Eventually(t, func() bool { return readFile(t, sharePath) != "" }, "the first share in --share-log")

	require.NoError(t, os.Rename(logPath, logPath+".1"))
	require.NoError(t, os.Rename(sharePath, sharePath+".1"))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	p.waitCount(t, `"event":"log.reopened"`, 1)
	// Two more shares: the share log line of at least one of them comes
	// after the reopen.
	p.waitCount(t, `"event":"share.accepted"`, p.count(`"event":"share.accepted"`)+2)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.wait(t), "SIGTERM drains and exits 0")

	old, cur := readFile(t, logPath+".1"), readFile(t, logPath)
	assert.Contains(t, old, `"event":"share.accepted"`)
	assert.NotContains(t, old, `"event":"log.reopened"`, "nothing after the reopen goes to the moved file")
	assert.Contains(t, cur, `"event":"log.reopened"`)
	assert.Contains(t, cur, `"event":"share.accepted"`)
	assert.Contains(t, cur, `"event":"miner.summary"`, "the summary is in the new log file")
	assert.NotEmpty(t, readFile(t, sharePath+".1"))
	assert.Contains(t, readFile(t, sharePath), `"outcome"`, "shares after the reopen go to the new share log")
	// The terminal got every line too.
	assert.Contains(t, p.output(), `"event":"miner.summary"`)
}

// openPTY returns a new pseudo-terminal's master and slave.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(master.Fd())
	require.NoError(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	require.NoError(t, err)
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	return master, slave
}

// A terminal that goes away (an ssh session or a screen window closed)
// stops clminer as SIGTERM does: it drains and logs the summary to
// --log-file rather than mine on unseen. As the session's leader it gets
// the kernel's SIGHUP; under a shell that leads the session, as in a
// screen window, it gets only the SIGHUP screen sends the window's process
// group before it closes the terminal (a rotation, as far as a signal
// tells), and must notice the hangup itself.
func TestTerminalHangupStopsWithSummary(t *testing.T) {
	for _, leader := range []bool{true, false} {
		name := "session leader"
		if !leader {
			name = "under a shell"
		}
		t.Run(name, func(t *testing.T) { terminalHangup(t, leader) })
	}
}

func terminalHangup(t *testing.T, leader bool) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0002})
	logPath := filepath.Join(t.TempDir(), "clminer.log")
	master, slave := openPTY(t)
	cmd := mainCmd(t, "--log-format", "json", "mine", "-o", pool.URL(), "-u", "wallet.rig1",
		"--device", "cpu", "--threads", "1", "--status-interval", "0", "--drain-timeout", "2s", "--best-share-file", "-",
		"--log-file", logPath)
	if !leader {
		// A shell that outlives the hangup, so no SIGHUP of the kernel's
		// reaches clminer.
		bash := requireTool(t, "bash")
		cmd.Args = append([]string{bash, "-c", `trap "" HUP; "$0" "$@"; rc=$?; exit $rc`}, cmd.Args...)
		cmd.Path = bash
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, cmd.Start())
	slave.Close()
	var waitErr error
	exited := make(chan struct{})
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// The terminal's output is what the test waits on.
	p := &proc{tick: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		p.read(master)
		close(p.done)
	}()
	p.waitCount(t, `"event":"share.accepted"`, 1)
	if !leader {
		// screen: SIGHUP to the window's process group, the terminal
		// still there.
		require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGHUP))
		p.waitCount(t, `"event":"log.reopened"`, 1)
	}
	require.NoError(t, master.Close()) // the terminal hangs up

	select {
	case <-exited:
		require.NoError(t, waitErr, "clminer died on the hangup; its log file:\n%s", readFile(t, logPath))
	case <-time.After(60 * time.Second):
		t.Fatalf("clminer still running 60 s after its terminal hung up; its log file:\n%s", readFile(t, logPath))
	}
	log := readFile(t, logPath)
	assert.Contains(t, log, `"event":"miner.summary"`)
}

// `clminer mine 2>&1 | tee log` in an ssh session: the log is not on the
// terminal, but the session's terminal is the run's controlling terminal.
// When it hangs up, the SIGHUP that follows stops the miner with its
// summary instead of reading as "reopen the logs" and mining on unseen.
func TestControllingTerminalHangupStops(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0002})
	dir := t.TempDir()
	logPath := filepath.Join(dir, "clminer.log")
	out, err := os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	defer out.Close()
	master, slave := openPTY(t)
	cmd := mainCmd(t, "--log-format", "json", "mine", "-o", pool.URL(), "-u", "wallet.rig1",
		"--device", "cpu", "--threads", "1", "--status-interval", "0", "--drain-timeout", "2s", "--best-share-file", "-",
		"--log-file", logPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	require.NoError(t, cmd.Start())
	slave.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), `"event":"share.accepted"`)
	}, "mining")
	require.NoError(t, master.Close()) // the terminal hangs up; the kernel signals the session leader
	select {
	case err := <-exited:
		require.NoError(t, err, "clminer died on the hangup; its log file:\n%s", readFile(t, logPath))
	case <-time.After(60 * time.Second):
		t.Fatalf("clminer still running 60 s after its controlling terminal hung up; its log file:\n%s", readFile(t, logPath))
	}
	assert.Contains(t, readFile(t, logPath), `"event":"miner.summary"`)
}

// The proxy's --log-file is reopened by SIGHUP as mine's is, and SIGTERM
// then logs its last status into the new file.
func TestProxySIGHUPReopensLogFile(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0002})
	logPath := filepath.Join(t.TempDir(), "proxy.log")
	p := startProc(t, mainCmd(t, "--log-format", "json", "proxy", "--listen", "127.0.0.1:0", "-o", pool.URL(), "-u", "farm",
		"--status-interval", "0", "--log-file", logPath))
	p.waitCount(t, `"event":"proxy.listening"`, 1)
	require.NoError(t, os.Rename(logPath, logPath+".1"))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	p.waitCount(t, `"event":"log.reopened"`, 1)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, p.wait(t))
	assert.Contains(t, readFile(t, logPath+".1"), `"event":"proxy.listening"`)
	cur := readFile(t, logPath)
	assert.Contains(t, cur, `"event":"log.reopened"`)
	assert.Contains(t, cur, `"event":"proxy.status"`, "the last status line goes to the new file")
}
