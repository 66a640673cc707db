package observe

import (
	"errors"
	"os"
	"sync"
)

// AppendFile is a file written by appending and reopened on SIGHUP, the
// one shape of the log file and the share log: logrotate moves the file
// away and signals, and the next write goes to a new file at the old path,
// with no copytruncate and no lost or doubled lines. Appending also leaves
// no hole when a rotation truncates the file in place.
type AppendFile struct {
	path   string
	mu     sync.Mutex
	f      *os.File
	closed bool
}

// errClosed is a write or reopen after Close.
var errClosed = errors.New("file closed")

// OpenAppendFile opens path for appending, creating it if needed.
func OpenAppendFile(path string) (*AppendFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &AppendFile{path: path, f: f}, nil
}

// Path is the file's name.
func (a *AppendFile) Path() string { return a.path }

// Write appends p.
func (a *AppendFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, errClosed
	}
	return a.f.Write(p)
}

// Reopen opens the path afresh and then closes the old file. On failure
// the old file stays in use. After Close it does nothing: a SIGHUP that
// lands during shutdown must not open a file no one closes.
func (a *AppendFile) Reopen() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errClosed
	}
	f, err := os.OpenFile(a.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	old := a.f
	a.f = f
	return old.Close()
}

// Close closes the file; later calls do nothing.
func (a *AppendFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	return a.f.Close()
}
