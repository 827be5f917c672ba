package main

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kushm/kushm/userside/client"
)

// exportedMetrics lists the names every collector of /metrics declares
// (whether or not this machine has a value for them now).
func exportedMetrics(t *testing.T, c *client.Client) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, col := range metricsCollectors(&globals{Root: "/"}, c) {
		ch := make(chan *prometheus.Desc, 1024)
		go func() { col.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fq.FindStringSubmatch(d.String()); m != nil {
				names[m[1]] = true
			}
		}
	}
	return names
}

// grafanaExprs returns every PromQL expression of a Grafana dashboard:
// the panels' targets (rows included) and the templating queries.
func grafanaExprs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "expr" || k == "definition") {
				*out = append(*out, s)
				continue
			}
			grafanaExprs(e, out)
		}
	case []any:
		for _, e := range x {
			grafanaExprs(e, out)
		}
	}
}

// TestGrafanaDashboard: docs/grafana/kushm.json is a dashboard whose
// every query names only metrics that kushm's /metrics exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana/kushm.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string           `json:"title"`
		UID    string           `json:"uid"`
		Panels []map[string]any `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("dashboard lacks a title, uid or panels")
	}
	var raw any
	json.Unmarshal(b, &raw)
	var exprs []string
	grafanaExprs(raw, &exprs)
	for _, p := range d.Panels {
		if p["type"] == "row" {
			continue
		}
		targets, _ := p["targets"].([]any)
		if len(targets) == 0 {
			t.Errorf("panel %q has no query", p["title"])
		}
	}

	c, err := client.Open(client.Options{Path: startProvider(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exported := exportedMetrics(t, c)
	name := regexp.MustCompile(`\bkushm_[a-z0-9_]+`)
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			used[m] = true
		}
	}
	var missing []string
	for m := range used {
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suf); ok && exported[b] {
				base = b
			}
		}
		if !exported[base] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics /metrics does not export: %v", missing)
	}
	if len(used) < 10 {
		t.Errorf("only %d metrics queried: %v", len(used), used)
	}
	t.Logf("%d panels, %d queries, %d metrics", len(d.Panels), len(exprs), len(used))
}
