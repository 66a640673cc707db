package observe

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
)

// dashboardHTML is the status page served at /: one self-contained file
// (no script, font or style from elsewhere: rigs are often offline) that
// holds no data. It reads /api/v1/status with the API token in a header,
// so serving the page itself needs no token - a browser cannot send a
// bearer token on navigation, and the page asks for it instead.
//
//go:embed dashboard.html
var dashboardHTML []byte

// pageCSP allows the page's own inline script (by hash) and style, and
// connections back to this server only: a reason or URL a pool sent cannot
// run as script, and the page cannot be framed or post anywhere.
var pageCSP = func() string {
	start := bytes.Index(dashboardHTML, []byte("<script>"))
	end := bytes.Index(dashboardHTML, []byte("</script>"))
	if start < 0 || end < start {
		panic("observe: dashboard.html has no inline script")
	}
	sum := sha256.Sum256(dashboardHTML[start+len("<script>") : end])
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// pageHandler serves the page. With a token, the page is told one is
// needed (the only thing it is told), so it asks before it requests the
// status rather than after a 401.
func pageHandler(tokenRequired bool) http.HandlerFunc {
	page := dashboardHTML
	if tokenRequired {
		page = bytes.Replace(page, []byte(`<body data-auth=""`), []byte(`<body data-auth="bearer"`), 1)
	}
	return func(w http.ResponseWriter, r *http.Request) { servePage(w, page) }
}

func servePage(w http.ResponseWriter, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(page)
}
