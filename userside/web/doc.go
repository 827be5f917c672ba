// Package web serves a region to browsers and scripts: one live page
// (per-CPU rates as plots, the top processes, syscall latency, the
// outlier stream, the producer's status and every "not available on this
// machine, because …" reason, and every section the region's schema
// declares) and the JSON it reads under /api/. Each /api document is the
// one the matching command prints with -o json (`kushm stats`, `status`,
// `query`, `syscalls`, `dump`), written by the same encoder, EncodeJSON;
// docs/web.md lists them.
//
// The page, its script and its chart library (uPlot, vendored by
// `make web` at a pinned version, with its license) are embedded in the
// binary: nothing is fetched from elsewhere.
//
// # Safety
//
//  1. Read-only: the handlers serve GET and HEAD only, and nothing they do
//     writes the region or its control section (the Client maps it
//     read-only).
//  2. Listen binds 127.0.0.1 when the address names no host; on a
//     loopback listener, requests whose Host header is not a loopback
//     name are refused (DNS rebinding). Exposure names the data a
//     non-loopback listener publishes, for the caller's warning.
//  3. Every response carries a Content-Security-Policy that allows
//     scripts, styles and connections to this origin only and no inline
//     script; the page makes no third-party request.
//  4. NewHTTPServer sets header, read, write and idle time-outs.
//
// # Concurrency and lifetimes
//
//  1. One goroutine (Run) reads the region, every Options.Interval; the
//     handlers only serve the documents it encoded last, so any number of
//     clients cost the region (and its producer) nothing.
//  2. A Server and its handler are safe for concurrent use. The Client
//     passed to New must stay open until Run has returned.
//  3. The documents of one sample are published together (one atomic
//     pointer): a client never sees the stats of one sample with the
//     status of another.
//  4. With Options.Reopen, the sampler replaces a stopped or dead
//     producer's client by its successor's under a write lock that the
//     /metrics and query handlers hold for reading, so no request reads a
//     closed mapping; Serve closes the re-opened client on return.
//
// # Errors
//
// An /api document that cannot be produced (a section the region lacks,
// no second sample yet) is answered with a JSON {"error": "..."} and
// status 404 (no such section) or 503 (not yet), never with zeros. A
// request for rates (stats, query) before the second sample waits for it,
// at most two intervals.
package web
