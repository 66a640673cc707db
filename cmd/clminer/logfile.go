package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/work/observe"
)

func logFileFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-file", Usage: "also append the log to this file; SIGHUP reopens it (and --share-log), so logrotate can move it without copytruncate", EnvVars: []string{"CLMINER_LOG_FILE"}}
}

// logFile is --log-file, opened for appending (a rotation that truncates
// the file in place leaves no hole) and reopened on SIGHUP.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	return &logFile{path: path, f: f}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen opens the path afresh (a new file, once logrotate has moved the
// old one away) and then closes the old one; on failure the old one stays.
func (l *logFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// teeLog writes each log line to the file, then to the terminal. The
// terminal's errors are dropped: a closed pipe or a hung-up terminal must
// not cost the file its copy.
type teeLog struct {
	file *logFile
	term io.Writer
}

func (t teeLog) Write(p []byte) (int, error) {
	n, err := t.file.Write(p)
	_, _ = t.term.Write(p)
	return n, err
}

// logOutput is where a long-running command logs: the terminal (stderr),
// and --log-file when given. The file, if any, is the caller's to close.
func logOutput(c *cli.Context) (io.Writer, *logFile, error) {
	path := strings.TrimSpace(c.String("log-file"))
	if path == "" {
		return errWriter(c), nil, nil
	}
	lf, err := openLogFile(path)
	if err != nil {
		return nil, nil, err
	}
	return teeLog{file: lf, term: errWriter(c)}, lf, nil
}

// reopenOnHangup makes SIGHUP reopen the log file and the share log (either
// may be nil) until the returned function is called.
func reopenOnHangup(logger *log.Logger, lf *logFile, sl *observe.ShareLog) (remove func()) {
	if lf == nil && sl == nil {
		return func() {}
	}
	return hangups.add(func() {
		var files []string
		if lf != nil {
			if err := lf.Reopen(); err != nil {
				logger.Error("could not reopen the log file; still writing the old one", "event", "log.reopen_failed", "path", lf.path, "err", err)
			} else {
				files = append(files, lf.path)
			}
		}
		if sl != nil {
			if err := sl.Reopen(); err != nil {
				logger.Error("could not reopen the share log; still writing the old one", "event", "log.reopen_failed", "path", sl.Path(), "err", err)
			} else {
				files = append(files, sl.Path())
			}
		}
		if len(files) > 0 {
			logger.Info("SIGHUP: reopened "+strings.Join(files, ", "), "event", "log.reopened", "files", strings.Join(files, " "))
		}
	})
}
