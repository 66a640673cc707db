// Package safetext makes text that came from outside safe to keep, print
// and export. It imports nothing of clminer's, so every layer (work, the
// Stratum and V2 clients, the solo source, the proxy, observe) can use it.
//
// Two kinds of outside text need it:
//
//   - What a peer sends: a pool's reject reason or message, a node's
//     submitblock verdict, a V2 error code, a LAN client's request. It is any
//     bytes of any length. It ends up in logs, errors, the status API and,
//     as a reject reason, in metric labels. A label value that is not valid
//     UTF-8 makes client_golang refuse the whole scrape, so one pool reason
//     cut in the middle of a rune ("x"*79 + "été" cut at 80 bytes) or one
//     raw \xff byte turned every later /metrics into HTTP 500 until a
//     restart. The four byte-offset clips that did this are replaced by one
//     function, Clip, which cuts on a rune boundary and replaces invalid
//     bytes, so there is one rule for every path and no second one to drift.
//     Label is Clip at the length metric labels keep.
//   - What a user types as a URL: it may carry user:password@ (a pool
//     password, a proxy's, a webhook's basic auth) even where the URL is
//     refused for exactly that reason. URL drops the user information from
//     any string, parsable or not, so an error about a URL can quote it.
package safetext
