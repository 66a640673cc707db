package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
)

// removeEventually removes dir, retrying while processes that are
// shutting down still create files in it.
func removeEventually(t *testing.T, dir string) {
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
	}
	t.Errorf("browser profile %s left behind: %v", dir, err)
}

// browser is a headless Chromium (Debian's chromium) driven over the
// DevTools protocol, collecting every console error, uncaught exception
// and browser log error of the pages it opens.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := requireTool(t, "chromium")
	// Not t.TempDir: Chromium's helper processes outlive the browser by a
	// moment and still write into the profile, so a single RemoveAll at
	// cleanup fails with "directory not empty" (seen in CI). The profile is
	// removed once the processes are gone, retrying for a while.
	profile, err := os.MkdirTemp("", "clminer-chromium-")
	require.NoError(t, err)
	t.Cleanup(func() { removeEventually(t, profile) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-crash-reporter", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError || ev.Type == runtime.APITypeWarning || ev.Type == runtime.APITypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.LevelError || ev.Entry.Level == cdplog.LevelWarning {
				msg = fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	})
	require.NoError(t, chromedp.Run(ctx, cdplog.Enable(), runtime.Enable()), "start chromium")
	return b
}

func (b *browser) run(t *testing.T, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Run(ctx, actions...), what)
}

func (b *browser) noErrors(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Empty(t, b.errors, "the page logged errors")
}

// text is an element's text.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	var s string
	b.run(t, "read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

// updates is how many times the page has refreshed its numbers.
func (b *browser) updates(t *testing.T) int {
	t.Helper()
	var n string
	b.run(t, "read updates", chromedp.Evaluate(`document.body.dataset.updates`, &n))
	v, err := strconv.Atoi(n)
	require.NoError(t, err)
	return v
}

// waitUpdates waits for the page's next n refreshes (a second apart with
// ?refresh=1): it polls the page, which has no event to wait on.
func (b *browser) waitUpdates(t *testing.T, n int) {
	t.Helper()
	want := b.updates(t) + n
	deadline := time.Now().Add(60 * time.Second)
	for b.updates(t) < want {
		require.True(t, time.Now().Before(deadline), "the page stopped refreshing; errors %v", b.errors)
		time.Sleep(200 * time.Millisecond)
	}
}

func parseCount(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	require.NoError(t, err, "%q is not a count", s)
	return v
}

func getStatusAuth(t *testing.T, addr, token string) statusDoc {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/status", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var s statusDoc
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

// The status page in a real browser on a live demo run behind a token: it
// asks for the token (no request fails first), keeps it in the tab's
// sessionStorage and sends it in a header (never in the URL), shows the
// run's live numbers - each between two reads of the status API around it
// - and updates them, draws the hour chart, fits a phone's width, and logs
// no error at any point. CLMINER_DASHBOARD_PNG=path also saves a
// screenshot (the README's).
func TestStatusPageInBrowser(t *testing.T) {
	b := startBrowser(t)
	const token = "page-test-token"
	r := startDemo(t, "--api-listen", "127.0.0.1:0", "--api-token", token)
	api := r.addr(t, "api.listening")
	r.waitFor(t, "an accepted share", func(r *liveRun) bool { return r.accepted >= 1 })

	b.run(t, "open the page", chromedp.Navigate("http://"+api+"/?refresh=1"),
		chromedp.WaitVisible("#login", chromedp.ByID))
	b.run(t, "give the token", chromedp.SendKeys("#token", token, chromedp.ByID), chromedp.Click("#login button", chromedp.ByQuery),
		chromedp.WaitVisible("#miner", chromedp.ByID))
	b.waitUpdates(t, 1)

	var href, stored string
	b.run(t, "read the tab", chromedp.Evaluate(`location.href`, &href),
		chromedp.Evaluate(`sessionStorage.getItem("clminer.apiToken")`, &stored))
	assert.NotContains(t, href, token)
	assert.Equal(t, token, stored)

	// The numbers are the run's: each lies between two status reads.
	before := getStatusAuth(t, api, token)
	b.waitUpdates(t, 1)
	shown := parseCount(t, b.text(t, "#accepted"))
	device := b.text(t, `#devices tbody tr[data-device="cpu"] td:first-child`)
	pool := b.text(t, "#pools tbody tr td.wrap")
	after := getStatusAuth(t, api, token)
	between(t, "accepted on the page", shown, before.Shares.Accepted, after.Shares.Accepted)
	assert.Equal(t, "cpu", device)
	assert.Equal(t, after.Pools[0].URL, pool)
	assert.Contains(t, b.text(t, "#hashrate"), "H/s")
	assert.NotEqual(t, "-", b.text(t, "#uptime"))
	assert.NotEqual(t, "-", b.text(t, "#best"))

	// And they move: more shares come, the page shows them.
	r.waitFor(t, "more accepted shares", func(r *liveRun) bool { return float64(r.accepted) > shown+1 })
	deadline := time.Now().Add(60 * time.Second)
	for parseCount(t, b.text(t, "#accepted")) <= shown {
		require.True(t, time.Now().Before(deadline), "the page's accepted count stayed at %v", shown)
		b.waitUpdates(t, 1)
	}

	// The chart has drawn something (its canvas is not blank).
	var painted bool
	b.run(t, "read the chart", chromedp.Evaluate(`(() => { const c = document.getElementById("chart");
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		for (let i = 3; i < d.length; i += 4) if (d[i]) return true; return false; })()`, &painted))
	assert.True(t, painted)

	if png := os.Getenv("CLMINER_DASHBOARD_PNG"); png != "" {
		var shot []byte
		b.run(t, "screenshot", chromedp.FullScreenshot(&shot, 90))
		require.NoError(t, os.WriteFile(png, shot, 0o644))
	}

	// A phone: nothing wider than the screen but the tables' own scroll
	// boxes.
	var overflow int
	b.run(t, "phone", emulation.SetDeviceMetricsOverride(390, 844, 3, true),
		chromedp.Reload(), chromedp.WaitVisible("#miner", chromedp.ByID))
	b.waitUpdates(t, 1)
	b.run(t, "measure", chromedp.Evaluate(`document.documentElement.scrollWidth - window.innerWidth`, &overflow))
	assert.LessOrEqual(t, overflow, 0, "the page is wider than a phone")
	if png := os.Getenv("CLMINER_DASHBOARD_PNG"); png != "" {
		var shot []byte
		b.run(t, "phone screenshot", chromedp.CaptureScreenshot(&shot))
		require.NoError(t, os.WriteFile(strings.TrimSuffix(png, ".png")+"-phone.png", shot, 0o644))
	}
	b.noErrors(t)
}

// The page without a token to ask for, on the farm proxy's API: it shows
// the proxy's miner and worker from its status, with no error logged.
func TestProxyStatusPageInBrowser(t *testing.T) {
	b := startBrowser(t)
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001})

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a, proxyDone := startProxyCommand(t, ctx, pool.URL())

	b.run(t, "open the page", chromedp.Navigate("http://"+a[1]+"/?refresh=1"),
		chromedp.WaitVisible("#proxy", chromedp.ByID))
	// No miner yet: the proxy's page, with empty tables.
	b.waitUpdates(t, 1)
	assert.Equal(t, "0", b.text(t, "#pMiners"))
	assert.Equal(t, "none", b.text(t, "#pMinerTable tbody tr td"))

	// One `clminer mine` behind the proxy, until the page is checked.
	mineCtx, stopMine := context.WithCancel(context.Background())
	mined := make(chan error, 1)
	go func() {
		app := newApp()
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		mined <- app.RunContext(mineCtx, []string{"clminer", "mine", "-o", "stratum+tcp://" + a[0], "-u", "wallet.rig1",
			"--device", "cpu", "--threads", "1", "--status-interval", "0", "--drain-timeout", "1s"})
	}()

	deadline := time.Now().Add(90 * time.Second)
	for b.text(t, "#pWorkers tbody tr td:first-child") != "wallet.rig1" || b.text(t, "#pAccepted") == "0" {
		require.True(t, time.Now().Before(deadline), "the proxy page never showed the miner's worker and a share")
		b.waitUpdates(t, 1)
	}
	assert.Equal(t, "1", b.text(t, "#pMiners"))
	assert.Contains(t, b.text(t, "#pMinerTable tbody tr"), "wallet.rig1")
	assert.Equal(t, "active", b.text(t, "#pPools tbody tr td:nth-child(3)"))
	var kind string
	b.run(t, "kind", chromedp.Evaluate(`document.body.dataset.kind`, &kind))
	assert.Equal(t, "proxy", kind)
	b.noErrors(t)

	stopMine()
	assert.NoError(t, <-mined)
	cancel()
	require.NoError(t, <-proxyDone)
}
