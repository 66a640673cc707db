package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/work/observe"
)

func logFileFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-file", Usage: "also append the log to this file; SIGHUP reopens it (and --share-log), so logrotate can move it without copytruncate", EnvVars: []string{"CLMINER_LOG_FILE"}}
}

// openLogFile opens --log-file: appended to and reopened on SIGHUP.
func openLogFile(path string) (*observe.AppendFile, error) {
	f, err := observe.OpenAppendFile(path)
	if err != nil {
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	return f, nil
}

// teeLog writes each log line to the file, then to the terminal. The
// terminal's errors are dropped: a closed pipe or a hung-up terminal must
// not cost the file its copy.
type teeLog struct {
	file *observe.AppendFile
	term io.Writer
}

func (t teeLog) Write(p []byte) (int, error) {
	n, err := t.file.Write(p)
	_, _ = t.term.Write(p)
	return n, err
}

// logOutput is where a long-running command logs: the terminal (stderr),
// and --log-file when given. The file, if any, is the caller's to close.
func logOutput(c *cli.Context) (io.Writer, *observe.AppendFile, error) {
	path := strings.TrimSpace(c.String("log-file"))
	if path == "" {
		return errWriter(c), nil, nil
	}
	lf, err := openLogFile(path)
	if err != nil {
		return nil, nil, err
	}
	// The error that ends the run goes to the file too (reportError):
	// where the log file is all an operator reads (Hive OS's miner log),
	// a miner that stops at start-up must say why there.
	c.App.Metadata[logFileKey] = path
	return teeLog{file: lf, term: errWriter(c)}, lf, nil
}

// startLogging opens where a long-running command logs (logOutput) and
// its logger. The log file, if any, is the caller's to close; it is closed
// here only when the logger cannot be made.
func startLogging(c *cli.Context) (*log.Logger, *observe.AppendFile, error) {
	out, lf, err := logOutput(c)
	if err != nil {
		return nil, nil, err
	}
	logger, err := newLogger(c, out)
	if err != nil {
		if lf != nil {
			_ = lf.Close()
		}
		return nil, nil, err
	}
	return logger, lf, nil
}

// closeOnError closes lf when the setup it was opened for fails (*err set
// by the time the caller returns).
func closeOnError(err *error, lf *observe.AppendFile) {
	if *err != nil && lf != nil {
		_ = lf.Close()
	}
}

// reopenOnHangup makes SIGHUP reopen the log file and the share log (either
// may be nil) until the returned function is called.
func reopenOnHangup(logger *log.Logger, lf *observe.AppendFile, sl *observe.ShareLog) (remove func()) {
	if lf == nil && sl == nil {
		return func() {}
	}
	return hangups.add(func() {
		var files []string
		if lf != nil {
			if err := lf.Reopen(); err != nil {
				logger.Error("could not reopen the log file; still writing the old one", "event", "log.reopen_failed", "path", lf.Path(), "err", err)
			} else {
				files = append(files, lf.Path())
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
