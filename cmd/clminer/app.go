package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/gpu/nvml"
	"clminer/gpu/opencl"
	"clminer/gpu/registry"
	"clminer/stratum"
	"clminer/work/observe"
)

// hooks are the pieces tests replace (they see the settings a command
// would run with, or give it a fake NVML) through the app they build,
// not through package variables, so such tests may run in parallel.
type hooks struct {
	// mine runs `mine` once its settings are checked [runMiner].
	mine func(c *cli.Context, setup *runSetup, copts stratum.Options) error
	// proxy runs `proxy` once its settings are checked [runProxy].
	proxy func(ctx context.Context, ps *proxySetup) error
	// openNVML opens NVIDIA's telemetry library [nvml.Open].
	openNVML func() (nvml.Library, error)
}

func (h *hooks) defaults() {
	if h.mine == nil {
		h.mine = runMiner
	}
	if h.proxy == nil {
		h.proxy = runProxy
	}
	if h.openNVML == nil {
		h.openNVML = nvml.Open
	}
}

func newApp() *cli.App { return newAppWith(hooks{}) }

// newAppWith is the app with h's pieces in place of the defaults.
func newAppWith(h hooks) *cli.App {
	h.defaults()
	app := &cli.App{
		Name:    "clminer",
		Usage:   "Bitcoin SHA-256d miner for OpenCL GPUs (and CPUs), speaking Stratum v1",
		Version: version + " (" + commit + ")",
		Flags:   globalFlags(true),
		Commands: []*cli.Command{
			command(devicesCommand()),
			command(benchCommand()),
			command(selftestCommand()),
			command(mineCommand(h)),
			command(demoCommand(h)),
			command(proxyCommand(h)),
		},
		// A password, worker name or fingerprint is one value: never split
		// it on commas, on the command line or in CLMINER_* variables.
		DisableSliceFlagSeparator: true,
		OnUsageError:              usageError,
		Before:                    refuseUnknownCommand,
		// main prints the error once (reportError), in the log format
		// the failing command resolved, noted here where it is known.
		ExitErrHandler: func(c *cli.Context, err error) {
			if err != nil && c != nil {
				noteLogFormat(c, true)
			}
		},
		Metadata: map[string]any{},
	}
	return app
}

// logFormatKey is where the app's Metadata keeps the log format of the
// command that failed, for reportError.
const logFormatKey = "log-format"

// logFileKey is where it keeps --log-file once a command has opened it.
const logFileKey = "log-file"

// noteLogFormat records, once per run, the log format in force where the
// run failed. A context whose own flags failed to parse (parsed false) has
// none: its parent's is used (the flags before the command and
// CLMINER_LOG_FORMAT), or, when the top-level flags failed, the variable.
func noteLogFormat(c *cli.Context, parsed bool) {
	if _, done := c.App.Metadata[logFormatKey]; done {
		return
	}
	var lineage []*cli.Context
	for _, x := range c.Lineage() {
		if x.App != nil {
			lineage = append(lineage, x)
		}
	}
	var f string
	switch {
	case parsed:
		f = globalString(c, "log-format")
	case len(lineage) > 1:
		f = globalString(lineage[1], "log-format")
	default:
		f = os.Getenv("CLMINER_LOG_FORMAT")
	}
	c.App.Metadata[logFormatKey] = strings.ToLower(f)
}

// reportError prints the error that ended the run: one line of text, or
// under --log-format json one JSON log object (event startup.error), so a
// log pipeline that reads JSON sees why the miner did not start.
func reportError(app *cli.App, w io.Writer, err error) {
	if path, _ := app.Metadata[logFileKey].(string); path != "" {
		if f, ferr := observe.OpenAppendFile(path); ferr == nil {
			defer f.Close()
			w = io.MultiWriter(w, f)
		}
	}
	if f, _ := app.Metadata[logFormatKey].(string); f == "json" {
		l, lerr := formatLogger(w, log.ErrorLevel, "json")
		if lerr == nil {
			l.Error(err.Error(), "event", "startup.error")
			return
		}
	}
	fmt.Fprintln(w, "clminer:", err)
}

// refuseUnknownCommand turns a first argument that names no command
// (`clminer mien`, `clminer help mien`) into one line naming it, with the
// likely command, instead of urfave/cli's "No help topic" text.
func refuseUnknownCommand(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) > 1 && (args[0] == "help" || args[0] == "h") {
		args = args[1:]
	}
	if len(args) == 0 || c.App.Command(args[0]) != nil {
		return nil
	}
	var names []string
	for _, cmd := range c.App.VisibleCommands() {
		names = append(names, cmd.Name)
	}
	hint := ""
	if s := suggest(args[0], names); s != "" {
		hint = fmt.Sprintf("did you mean %q? ", s)
	}
	return fmt.Errorf("unknown command %q (%scommands: %s; see `clminer --help`)", args[0], hint, strings.Join(names, ", "))
}

// globalFlags are accepted before the command (`clminer --log-format json
// mine`) and after it (`clminer mine --log-format json`). Only the
// top-level copy reads the environment, so that a flag after the command
// is known to come from the command line; globalString resolves them.
func globalFlags(top bool) []cli.Flag {
	env := func(name string) []string {
		if top {
			return []string{name}
		}
		return nil
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: env("CLMINER_LOG_LEVEL")},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json (one object per line, each with a stable event field)", EnvVars: env("CLMINER_LOG_FORMAT")},
	}
}

// command gives every subcommand the global flags, one-line usage errors,
// and a refusal of positional arguments: none takes any, and a stray word
// is usually a boolean flag's value given without "=" (`--version-rolling
// false` leaves rolling on and makes "false" an argument).
func command(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, globalFlags(false)...)
	cmd.OnUsageError = usageError
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if err := refuseArgs(c); err != nil {
			return err
		}
		return action(c)
	}
	return cmd
}

func refuseArgs(c *cli.Context) error {
	if c.Args().Len() == 0 {
		return nil
	}
	a := c.Args().First()
	if _, err := strconv.ParseBool(a); err == nil {
		return fmt.Errorf("unexpected argument %q: a boolean flag takes its value with =, e.g. --version-rolling=false", a)
	}
	return fmt.Errorf("unexpected argument %q: `clminer %s` takes only flags (see --help)", a, c.Command.Name)
}

// globalString reads a global flag: the value given after the command
// wins, then the one before it, then CLMINER_*, then the default.
func globalString(c *cli.Context, name string) string {
	var lineage []*cli.Context
	for _, x := range c.Lineage() {
		if x.App != nil { // urfave/cli puts an empty context above the app's
			lineage = append(lineage, x)
		}
	}
	for _, x := range lineage[:len(lineage)-1] {
		if localFlagSet(x, name) {
			return x.String(name)
		}
	}
	return lineage[len(lineage)-1].String(name)
}

// localFlagSet reports whether name was given on the command line of
// exactly this context (not a parent's).
func localFlagSet(c *cli.Context, name string) bool {
	for _, n := range c.LocalFlagNames() {
		if n == name {
			return true
		}
	}
	return false
}

// isSetAnywhere reports whether a flag was set by the command line or the
// environment at any level (a global flag before the command counts).
func isSetAnywhere(c *cli.Context, name string) bool {
	for _, x := range c.Lineage() {
		if x.IsSet(name) {
			return true
		}
	}
	return false
}

var (
	reBadValue = regexp.MustCompile(`^invalid value "(.*)" for flag -+([A-Za-z0-9-]+): (.*)$`)
	reBadEnv   = regexp.MustCompile(`^could not parse "(.*)" as .* from (?:env var|environment variable) "?([A-Z0-9_]+)"? for flag ([A-Za-z0-9-]+): (.*)$`)
	reUnknown  = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	reNeedsArg = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// usageError turns a flag parse error into one line saying what to fix,
// instead of the parse error and the whole help text.
func usageError(c *cli.Context, err error, _ bool) error {
	noteLogFormat(c, false)
	msg := err.Error()
	cmd := "clminer"
	if c.Command != nil && c.Command.Name != "" && !c.Command.HasName(c.App.Name) {
		cmd += " " + c.Command.Name
	}
	if m := reBadValue.FindStringSubmatch(msg); m != nil {
		return errors.New(valueError("--"+m[2], m[1], lookupFlag(c, m[2]), m[3]))
	}
	if m := reBadEnv.FindStringSubmatch(msg); m != nil {
		return errors.New(valueError(m[2], m[1], lookupFlag(c, m[3]), m[4]))
	}
	if m := reUnknown.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("unknown flag -%s%s (see `%s --help`)", dashes(m[1]), m[1], cmd)
	}
	if m := reNeedsArg.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("flag -%s%s needs a value (see `%s --help`)", dashes(m[1]), m[1], cmd)
	}
	return fmt.Errorf("%s (see `%s --help`)", strings.Join(strings.Fields(msg), " "), cmd)
}

func dashes(name string) string {
	if len(name) > 1 {
		return "-"
	}
	return ""
}

func lookupFlag(c *cli.Context, name string) cli.Flag {
	var flags []cli.Flag
	if c.Command != nil {
		flags = append(flags, c.Command.Flags...)
	}
	flags = append(flags, c.App.Flags...)
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// valueError says what is wrong with value for the flag, variable or
// config key where (e.g. "--drain-timeout", "CLMINER_DRAIN_TIMEOUT"). It is
// the one place that explains bad values, whichever way they came in.
func valueError(where, value string, f cli.Flag, reason string) string {
	switch f.(type) {
	case *cli.DurationFlag:
		if _, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			return fmt.Sprintf("%s %s: a duration needs a unit: write %ss (or e.g. 500ms, 2m)", where, value, strings.TrimSpace(value))
		}
		return fmt.Sprintf("%s %q: not a duration; write e.g. 5s, 500ms or 2m", where, value)
	case *cli.BoolFlag:
		return fmt.Sprintf("%s %q: not a boolean; write true or false", where, value)
	case *cli.IntFlag, *cli.Uint64Flag:
		return fmt.Sprintf("%s %q: not a whole number", where, value)
	case *cli.Float64Flag:
		return fmt.Sprintf("%s %q: not a number", where, value)
	}
	if reason == "" {
		reason = "bad value"
	}
	return fmt.Sprintf("%s %q: %s", where, value, reason)
}

// deviceFlags are shared by every command that opens devices.
func deviceFlags(defaultSpec string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Value: defaultSpec, Usage: "devices to use: " + registry.SpecHelp, EnvVars: []string{"CLMINER_DEVICE"}},
		&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "CPU device worker threads (0: one per core)", EnvVars: []string{"CLMINER_THREADS"}},
		&cli.StringFlag{Name: "cpu-path", Usage: "force a CPU hashing path (clminer devices lists them)", EnvVars: []string{"CLMINER_CPU_PATH"}},
		&cli.Float64Flag{Name: "kernel-ms", Value: 50, Usage: "OpenCL kernel time per batch to tune for, in ms; two batches stay queued, so a new block waits out at most about two", EnvVars: []string{"CLMINER_KERNEL_MS"}},
		&cli.IntFlag{Name: "intensity", Aliases: []string{"I"}, Usage: fmt.Sprintf("fix OpenCL batches at 2^N hashes (nonces x rolled versions) instead of tuning (%d..%d; 0: autotune)", opencl.MinIntensity, opencl.MaxIntensity), EnvVars: []string{"CLMINER_INTENSITY"}},
		&cli.IntFlag{Name: "vector-width", Usage: "force the OpenCL kernel vector width (1,2,4,8,16; 0: the device's preferred)", EnvVars: []string{"CLMINER_VECTOR_WIDTH"}},
		&cli.IntFlag{Name: "kernel-versions", Usage: fmt.Sprintf("rolled versions hashed per nonce when the pool rolls versions: OpenCL 1, 2 or 4 (0: %d on GPUs, %d on CPU runtimes); the CPU device 1, 2 or 4 (1: off; 0: the fastest shape measured at start)", opencl.DefaultVersions, opencl.DefaultCPUVersions), EnvVars: []string{"CLMINER_KERNEL_VERSIONS"}},
		&cli.StringFlag{Name: "kernel-maj", Usage: "force the OpenCL kernel's Maj shape: lop3 or merge (default: by the device's vendor)", EnvVars: []string{"CLMINER_KERNEL_MAJ"}},
		&cli.StringFlag{Name: "kernel-cache", Usage: "directory for compiled OpenCL programs (default: user cache dir; '-' disables)", EnvVars: []string{"CLMINER_KERNEL_CACHE"}},
	}
}

// deviceOptions reads and validates the device flags; nothing is opened.
func deviceOptions(c *cli.Context) (registry.Options, error) {
	o := registry.Options{
		Threads:        c.Int("threads"),
		CPUPath:        c.String("cpu-path"),
		KernelMS:       c.Float64("kernel-ms"),
		Intensity:      c.Int("intensity"),
		VectorWidth:    c.Int("vector-width"),
		KernelVersions: c.Int("kernel-versions"),
		KernelMaj:      c.String("kernel-maj"),
		CacheDir:       c.String("kernel-cache"),
	}
	return o, o.Validate()
}

// newLogger builds the process logger from the global flags.
func newLogger(c *cli.Context, w io.Writer) (*log.Logger, error) {
	level := globalString(c, "log-level")
	lvl, err := log.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return formatLogger(w, lvl, globalString(c, "log-format"))
}

// formatLogger is the one place that sets up a log format.
func formatLogger(w io.Writer, lvl log.Level, format string) (*log.Logger, error) {
	l := log.NewWithOptions(w, log.Options{Level: lvl, ReportTimestamp: true, TimeFormat: time.DateTime})
	switch strings.ToLower(format) {
	case "text", "":
	case "json":
		l.SetFormatter(log.JSONFormatter)
		l.SetTimeFormat(time.RFC3339Nano)
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
	return l, nil
}

// errWriter is where logs and progress go: the app's ErrWriter (stderr).
func errWriter(c *cli.Context) io.Writer {
	if c.App.ErrWriter != nil {
		return c.App.ErrWriter
	}
	return os.Stderr
}
