package main

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// watchSignals turns the process's signals into the run's lifecycle:
//
//   - SIGINT or SIGTERM calls stop once, which starts the graceful drain;
//     the handler is then removed, so a second one exits at once.
//   - SIGHUP reopens the log files (hangups), for logrotate without
//     copytruncate: it never kills.
//   - The hangup SIGHUP was named for, the terminal clminer logs to going
//     away (an ssh session or a screen window closed), stops it as SIGTERM
//     does, with the summary in --log-file, rather than let it mine on
//     unseen. It is watched on the terminal itself, not inferred from
//     SIGHUP: screen signals the window before it closes the terminal,
//     and the kernel's own SIGHUP reaches only a session's leader.
//
// It is installed before anything else, so that no signal kills the
// miner without a summary, even during a kernel build.
func watchSignals(stop func()) {
	term := make(chan os.Signal, 1)
	signal.Notify(term, os.Interrupt, syscall.SIGTERM)
	// A process started with SIGHUP ignored (nohup) asked to outlive its
	// terminal; Notify below would take that away, so remember it first.
	nohup := signal.Ignored(syscall.SIGHUP)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	tty := isTerminal(int(os.Stderr.Fd()))
	ctty := controllingTerminal(nohup)
	stopOnce := sync.OnceFunc(func() {
		signal.Stop(term)
		stop()
	})
	if tty {
		go func() {
			if waitHangup(int(os.Stderr.Fd())) {
				stopOnce()
			}
		}()
	}
	go func() {
		for {
			select {
			case <-term:
				stopOnce()
			case <-hup:
				// The shell's SIGHUP to its jobs when the session's
				// terminal goes (an ssh logout with `clminer mine 2>&1 |
				// tee log` in the foreground): the log is not on the
				// terminal, but the terminal the run started in is gone.
				if tty && terminalHungUp(int(os.Stderr.Fd())) || ctty >= 0 && terminalHungUp(ctty) {
					stopOnce()
					continue
				}
				hangups.run()
			}
		}
	}()
}

// waitHangup blocks until the terminal on fd hangs up (true), or cannot be
// watched (false). Asked for no event, poll reports only a hangup or an
// error; a hung-up terminal always reports POLLHUP.
func waitHangup(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd)}}
	for {
		_, err := unix.Poll(fds, -1)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return false
		case fds[0].Revents&unix.POLLHUP != 0:
			return true
		case fds[0].Revents != 0: // an error that is no hangup: stop watching rather than spin
			return terminalHungUp(fd)
		}
	}
}

// controllingTerminal opens the process's controlling terminal, if it has
// one and was not started under nohup, and returns its descriptor (or -1):
// under systemd or setsid there is none, and SIGHUP only ever means
// "reopen the logs".
func controllingTerminal(nohup bool) int {
	if nohup {
		return -1
	}
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1
	}
	return fd
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// terminalHungUp: after a hangup the kernel answers every ioctl on the
// terminal with EIO (and it does so before it sends SIGHUP).
func terminalHungUp(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return errors.Is(err, unix.EIO)
}

// keepRunningOnBrokenPipe is called by the commands that mine or serve: a
// reader of their output that goes away (a `| tee` that a Ctrl+C in the
// same process group ends first, journald restarting) must not kill them
// mid-drain. Go kills a program on a broken pipe on stdout or stderr
// unless SIGPIPE is ignored; ignored, the write fails and the log line
// still reaches --log-file.
func keepRunningOnBrokenPipe() { signal.Ignore(syscall.SIGPIPE) }

// hangupList is what SIGHUP reopens: each running command adds its log
// files while it runs.
type hangupList struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

var hangups = &hangupList{fns: map[int]func(){}}

// add registers fn until the returned remove is called.
func (h *hangupList) add(fn func()) (remove func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	h.fns[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.fns, id)
	}
}

func (h *hangupList) run() {
	h.mu.Lock()
	fns := make([]func(), 0, len(h.fns))
	for _, fn := range h.fns {
		fns = append(fns, fn)
	}
	h.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}
