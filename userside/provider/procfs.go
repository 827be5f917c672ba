package provider

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kushm/kushm/internal/sys"
)

// procStat is what the provider takes from /proc/<pid>/stat.
type procStat struct {
	Comm      string
	MinFlt    uint64
	MajFlt    uint64
	UTime     uint64 // clock ticks
	STime     uint64 // clock ticks
	StartTime uint64 // clock ticks after boot: tells a reused pid apart
}

var errStatSyntax = errors.New("malformed /proc/<pid>/stat")

// parseProcStat parses the content of /proc/<pid>/stat. The comm field is
// in parentheses and may itself contain spaces and parentheses, so the
// fields are counted from the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	var ps procStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return ps, errStatSyntax
	}
	ps.Comm = string(b[open+1 : end])
	if len(ps.Comm) > 64 {
		return ps, errStatSyntax
	}
	// Fields after the comm: index 0 is field 3 (state).
	f := strings.Fields(string(b[end+1:]))
	// field n (1-based, as in proc(5)) is f[n-3].
	const need = 22
	if len(f) < need-2 {
		return ps, errStatSyntax
	}
	get := func(n int) (uint64, error) {
		v, err := strconv.ParseUint(f[n-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: field %d: %v", errStatSyntax, n, err)
		}
		return v, nil
	}
	var err error
	for _, x := range []struct {
		n   int
		dst *uint64
	}{{10, &ps.MinFlt}, {12, &ps.MajFlt}, {14, &ps.UTime}, {15, &ps.STime}, {22, &ps.StartTime}} {
		if *x.dst, err = get(x.n); err != nil {
			return ps, err
		}
	}
	return ps, nil
}

// procUID returns the owner of /proc/<pid> (the task's effective uid).
func procUID(root string, pid int) (uint32, error) {
	st, err := sys.StatPseudo(filepath.Join(root, "proc", strconv.Itoa(pid)))
	if err != nil {
		return 0, err
	}
	return st.UID, nil
}

// parseCgroupV2 returns the cgroup v2 path ("0::/a/b") of /proc/<pid>/cgroup
// content, or "" when the process has none.
func parseCgroupV2(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest
		}
	}
	return ""
}

// inCgroup reports whether cgroup path p is cg or below it.
func inCgroup(p, cg string) bool {
	if cg == "/" {
		return true
	}
	return p == cg || strings.HasPrefix(p, cg+"/")
}

// listPIDs returns the numeric entries of <root>/proc.
func listPIDs(root string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(root, "proc"))
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
			pids = append(pids, n)
		}
	}
	return pids, nil
}
