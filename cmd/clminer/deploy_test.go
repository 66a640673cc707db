package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const deployDir = "../../deploy"

// syncBuffer collects a child process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// promtool checks the alerting rules and runs their unit tests (each alert
// fires on the series that should raise it and not on a healthy rig).
func TestAlertRules(t *testing.T) {
	promtool := requireTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "clminer-rules.yml"},
		{"test", "rules", "clminer-rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Join(deployDir, "prometheus")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
	}
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", u, b)
	return b
}

// httpGetAny is httpGet for an API that answers errors with a JSON body
// and a 4xx status (Prometheus on a bad query).
func httpGetAny(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// grafanaVars gives Grafana's variables the values Grafana would send: the
// Rig variable's "All" (a regex), the rate and step intervals.
var grafanaVars = strings.NewReplacer(`$instance`, `.*`, `${instance}`, `.*`, `$__rate_interval`, `1m`,
	`$__interval`, `15s`, `$__range`, `1h`)

type dashExpr struct{ panel, expr string }

// dashboardExprs is every target's query, by panel.
func dashboardExprs(t *testing.T, dash []byte) []dashExpr {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(dash, &d))
	var out []dashExpr
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, dashExpr{p.Title, tg.Expr})
		}
	}
	return out
}

// The dashboard imports through Grafana's UI and provisions from files
// alike: its data source is a variable of type datasource (Prometheus)
// that every panel, query and variable uses, with no ${DS_...} import
// input, which a provisioned dashboard leaves unresolved.
func TestGrafanaDashboardProvisionable(t *testing.T) {
	dash, err := os.ReadFile(filepath.Join(deployDir, "grafana", "clminer.json"))
	require.NoError(t, err)
	assert.False(t, strings.Contains(string(dash), "${DS_"), "an import input (${DS_...}): provisioned, every panel would lack its data source")
	type ds struct{ Type, UID string }
	var d struct {
		Inputs     []any `json:"__inputs"`
		UID        string
		Templating struct {
			List []struct {
				Name, Type string
				Query      any
				Datasource *ds
			}
		}
		Panels []struct {
			Title      string
			Datasource *ds
			Targets    []struct {
				Expr       string
				Datasource *ds
			}
		}
	}
	require.NoError(t, json.Unmarshal(dash, &d))
	assert.Empty(t, d.Inputs)
	assert.NotEmpty(t, d.UID, "a fixed uid: provisioning updates the dashboard in place")
	want := ds{"prometheus", "${datasource}"}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			dsVar = true
			assert.Equal(t, "datasource", v.Name)
			assert.Equal(t, "prometheus", v.Query)
			continue
		}
		require.NotNil(t, v.Datasource, "variable %s", v.Name)
		assert.Equal(t, want, *v.Datasource, "variable %s", v.Name)
	}
	assert.True(t, dsVar, "a data-source variable")

	prov, err := os.ReadFile(filepath.Join(deployDir, "grafana", "provisioning.yml"))
	require.NoError(t, err)
	var pv struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	require.NoError(t, yaml.Unmarshal(prov, &pv))
	assert.Equal(t, 1, pv.APIVersion)
	require.Len(t, pv.Providers, 1)
	assert.Equal(t, "file", pv.Providers[0].Type)
	assert.NotEmpty(t, pv.Providers[0].Options.Path)
	require.NotEmpty(t, d.Panels)
	for _, p := range d.Panels {
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		assert.Equal(t, want, *p.Datasource, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			if tg.Datasource != nil {
				assert.Equal(t, want, *tg.Datasource, "panel %q", p.Title)
			}
		}
	}
}

// freePort picks a loopback port for a program that cannot be told to use
// port 0 and report it.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

var reMetricName = regexp.MustCompile(`\bclminer_[a-z0-9_]+`)

// metricNames are the clminer series a PromQL text names, histogram
// suffixes folded into the histogram's name.
func metricNames(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range reMetricName.FindAllString(text, -1) {
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if strings.HasSuffix(m, "_seconds"+suf) {
				m = strings.TrimSuffix(m, suf)
			}
		}
		out[m] = true
	}
	return out
}

// A demo run's /metrics passes `promtool check metrics`; a real Prometheus
// scrapes it with the alert rules loaded, answers a query for its share
// counter through the HTTP API, and evaluates every rule without error;
// every series the rules and the Grafana dashboard use is one clminer
// exports (the GPU series come from NVML, tested with a fake), and every
// dashboard query is valid PromQL it answers.
func TestPrometheusScrapesDemo(t *testing.T) {
	promtool := requireTool(t, "promtool")
	prom := requireTool(t, "prometheus")
	r := startDemo(t, "--api-listen", "127.0.0.1:0")
	api := r.addr(t, "api.listening")
	r.waitFor(t, "an accepted share", func(r *liveRun) bool { return r.accepted >= 1 })

	exposition := httpGet(t, "http://"+api+"/metrics")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(string(exposition))
	out, err := check.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)

	exported := map[string]bool{}
	for _, line := range strings.Split(string(exposition), "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			exported[strings.Fields(line)[2]] = true
		}
	}
	for name := range conditionalMetricNames(t) {
		exported[name] = true
	}
	rules, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "clminer-rules.yml"))
	require.NoError(t, err)
	dash, err := os.ReadFile(filepath.Join(deployDir, "grafana", "clminer.json"))
	require.NoError(t, err)
	exprs := dashboardExprs(t, dash)
	require.NotEmpty(t, exprs)
	for _, e := range exprs {
		names := metricNames(e.expr)
		require.NotEmpty(t, names, "panel %q: %s", e.panel, e.expr)
		for n := range names {
			assert.True(t, exported[n], "dashboard panel %q uses %s, which clminer does not export", e.panel, n)
		}
	}
	for n := range metricNames(string(rules)) {
		assert.True(t, exported[n], "alert rules use %s, which clminer does not export", n)
	}

	dir := t.TempDir()
	rulesPath, err := filepath.Abs(filepath.Join(deployDir, "prometheus", "clminer-rules.yml"))
	require.NoError(t, err)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %s\nscrape_configs:\n  - job_name: clminer\n    static_configs:\n      - targets: ['%s']\n", rulesPath, api)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600))
	web := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web)
	plog := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = plog, plog
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})

	// Prometheus is an outside process with no event to wait on: poll its
	// query API until the first scrape lands, bounded.
	q := "http://" + web + "/api/v1/query?query=" + url.QueryEscape(`clminer_shares_total{job="clminer",result="accepted"}`)
	deadline := time.Now().Add(60 * time.Second)
	var got float64
	for {
		var res struct {
			Status string
			Data   struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		if resp, err := http.Get(q); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&res)
			resp.Body.Close()
		}
		if res.Status == "success" && len(res.Data.Result) > 0 {
			v := res.Data.Result[0].Value[1].(string)
			_, err := fmt.Sscan(v, &got)
			require.NoError(t, err)
			assert.Equal(t, "cpu", res.Data.Result[0].Metric["device"])
			break
		}
		require.True(t, time.Now().Before(deadline), "Prometheus never returned the series; its log:\n%s", plog.String())
		time.Sleep(200 * time.Millisecond) // polling Prometheus's HTTP API: there is no event to wait on
	}
	assert.Positive(t, got, "Prometheus scraped accepted shares")

	// Every query of the Grafana dashboard is valid PromQL that this
	// Prometheus answers, with Grafana's variables given values as Grafana
	// would; the Rig variable's label_values() lists the scraped rig.
	for _, e := range dashboardExprs(t, dash) {
		q := grafanaVars.Replace(e.expr)
		require.NotContains(t, q, "$", "panel %q: a variable the test does not know: %s", e.panel, e.expr)
		var res struct {
			Status, Error string
		}
		require.NoError(t, json.Unmarshal(httpGetAny(t, "http://"+web+"/api/v1/query?query="+url.QueryEscape(q)), &res))
		assert.Equal(t, "success", res.Status, "panel %q: %s: %s", e.panel, q, res.Error)
	}
	var labels struct {
		Status string
		Data   []string
	}
	require.NoError(t, json.Unmarshal(httpGet(t, "http://"+web+"/api/v1/label/instance/values?match[]=clminer_build_info"), &labels))
	assert.Equal(t, "success", labels.Status)
	assert.Contains(t, labels.Data, api, "label_values(clminer_build_info, instance) lists the rig")

	// Every rule evaluates cleanly against the real exposition.
	for {
		var rr struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Health, LastError string
					}
				}
			}
		}
		require.NoError(t, json.Unmarshal(httpGet(t, "http://"+web+"/api/v1/rules"), &rr))
		require.Len(t, rr.Data.Groups, 1)
		pending := false
		for _, rule := range rr.Data.Groups[0].Rules {
			assert.NotEqual(t, "err", rule.Health, "rule %s: %s", rule.Name, rule.LastError)
			pending = pending || rule.Health == "unknown"
		}
		if !pending {
			assert.Len(t, rr.Data.Groups[0].Rules, 8)
			break
		}
		require.True(t, time.Now().Before(deadline), "rules never evaluated; log:\n%s", plog.String())
		time.Sleep(200 * time.Millisecond) // polling Prometheus's HTTP API: there is no event to wait on
	}
}

// unitFile is a systemd unit: section -> key -> values, in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	u := unitFile{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "unit line %q", line)
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

const (
	unitPath          = deployDir + "/systemd/clminer.service"
	exampleConfigPath = deployDir + "/clminer.example.yaml"
)

// The shipped unit and example config work together: the unit hands the
// config (root's, mode 0600) to the service as a credential and mine
// accepts it; every file the config writes lies in a directory the unit
// gives the service; the stop timeout outlasts the drain; SIGHUP reloads;
// the GPU device nodes stay reachable.
func TestSystemdUnitAndExampleConfig(t *testing.T) {
	u := parseUnit(t, unitPath)
	svc := func(k string) string { return u.get("Service", k) }

	cred, src, ok := strings.Cut(svc("LoadCredential"), ":")
	require.True(t, ok, "LoadCredential=%s", svc("LoadCredential"))
	assert.Equal(t, "/etc/clminer/clminer.yaml", src)
	execStart := strings.Fields(svc("ExecStart"))
	require.NotEmpty(t, execStart)
	assert.Equal(t, "/usr/local/bin/clminer", execStart[0])
	assert.Contains(t, svc("ExecStart"), "mine --config ${CREDENTIALS_DIRECTORY}/"+cred)
	assert.Contains(t, svc("ExecStart"), "--log-format json", "one JSON object per line in the journal")
	assert.Equal(t, "/bin/kill -HUP $MAINPID", svc("ExecReload"))

	r, err := runApp(t, "mine", "--config", exampleConfigPath)
	require.NoError(t, err, "the example config passes mine's checks")
	require.NotEmpty(t, r.setup.pools)
	dirs := map[string]string{
		"StateDirectory": "/var/lib/", "CacheDirectory": "/var/cache/", "LogsDirectory": "/var/log/",
	}
	for k, base := range dirs {
		require.NotEmpty(t, svc(k), k)
		dirs[k] = base + svc(k)
	}
	within := func(what, path, dir string) {
		t.Helper()
		rel, err := filepath.Rel(dir, path)
		assert.True(t, err == nil && !strings.HasPrefix(rel, ".."), "%s %s is not in %s, which the unit gives the service", what, path, dir)
	}
	within("best-share-file", r.setup.fleet.bestFile, dirs["StateDirectory"])
	within("kernel-cache", r.setup.devices.CacheDir, dirs["CacheDirectory"])
	within("share-log", r.setup.api.shareLog, dirs["LogsDirectory"])
	assert.Equal(t, "", r.c.String("log-file"), "under systemd the journal keeps the log")
	stop, err := time.ParseDuration(strings.TrimSuffix(svc("TimeoutStopSec"), "s") + "s")
	require.NoError(t, err, "TimeoutStopSec=%s", svc("TimeoutStopSec"))
	assert.Greater(t, stop, r.setup.drainTimeout+5*time.Second, "systemd must not SIGKILL the miner mid-drain")

	groups := strings.Fields(svc("SupplementaryGroups"))
	assert.Contains(t, groups, "render", "AMD's /dev/kfd and /dev/dri/renderD*")
	assert.Contains(t, groups, "video", "/dev/dri/card*")
	assert.NotEqual(t, "yes", svc("PrivateDevices"), "hides /dev/dri, /dev/kfd and /dev/nvidia*")
	assert.NotEqual(t, "yes", svc("ProtectClock"), "implies a DeviceAllow= list without the GPUs")
	assert.Empty(t, svc("DeviceAllow"), "an allow list would have to name every GPU node")
	assert.NotEqual(t, "pid", svc("ProcSubset"), "NVML reads /proc/driver/nvidia")
	assert.NotEqual(t, "yes", svc("MemoryDenyWriteExecute"), "OpenCL compilers write code")

	// The README installs what is shipped, where the unit looks.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	section := string(readme)
	start := strings.Index(section, "### systemd")
	require.GreaterOrEqual(t, start, 0)
	section = section[start:]
	if end := strings.Index(section[4:], "\n### "); end >= 0 {
		section = section[:end+4]
	}
	for _, s := range []string{"deploy/systemd/clminer.service", "deploy/clminer.example.yaml", "/etc/clminer/clminer.yaml", "/usr/local/bin/clminer", "systemctl reload clminer"} {
		assert.Contains(t, section, s)
	}
	assert.NotContains(t, section, "[Service]", "the README points at the shipped unit rather than a copy of it")
}

// systemd's own checks: `systemd-analyze verify` finds nothing to say
// about the unit (run on a copy whose ExecStart= names a binary that exists
// here), and the README states the exposure `systemd-analyze security`
// gives it.
func TestSystemdAnalyze(t *testing.T) {
	sa := requireTool(t, "systemd-analyze")
	b, err := os.ReadFile(unitPath)
	require.NoError(t, err)
	require.Contains(t, string(b), "ExecStart=/usr/local/bin/clminer ")
	copyPath := filepath.Join(t.TempDir(), "clminer.service")
	require.NoError(t, os.WriteFile(copyPath, []byte(strings.Replace(string(b), "ExecStart=/usr/local/bin/clminer ", "ExecStart="+clminerExe(t)+" ", 1)), 0o644))
	out, err := exec.Command(sa, "verify", copyPath).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify has warnings")

	out, err = exec.Command(sa, "security", "--offline=true", copyPath).CombinedOutput()
	if err != nil && strings.Contains(string(out), "offline") {
		t.Skipf("this systemd-analyze has no --offline (systemd 250+): %s", out)
	}
	require.NoError(t, err, "%s", out)
	m := regexp.MustCompile(`Overall exposure level for clminer\.service: ([0-9.]+) (\w+)`).FindStringSubmatch(string(out))
	require.NotNil(t, m, "%s", out)
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	assert.Contains(t, string(readme), fmt.Sprintf("exposure %s (%s)", m[1], m[2]), "the README's systemd-analyze security figure")
}
