package client

import (
	"fmt"
	"strings"
	"time"

	"github.com/kushm/kushm/internal/abi"
	"github.com/kushm/kushm/internal/sanitize"
	"github.com/kushm/kushm/shm"
)

// SectionInfo describes one section for Status.
type SectionInfo struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Size     uint64 `json:"size"`
	Count    uint32 `json:"count"`
	External bool   `json:"external,omitempty"`
	Missing  bool   `json:"missing,omitempty"`
	// MissingReason says why a missing section's file could not be used
	// (absent, no permission, empty, truncated, another owner or type).
	MissingReason string `json:"missing_reason,omitempty"`
	Writable      bool   `json:"user_writable,omitempty"`
}

// Status says who produces the region, how fresh it is, what it holds and
// what is unavailable.
type Status struct {
	Path         string        `json:"path"`
	Producer     string        `json:"producer"` // "kernel module", "daemon", "application"
	ProducerName string        `json:"producer_name"`
	PID          uint32        `json:"pid,omitempty"`
	Created      time.Time     `json:"created"`
	Generation   uint64        `json:"generation"`
	State        string        `json:"state"`
	HeartbeatAge time.Duration `json:"heartbeat_age_ns"`
	Stale        bool          `json:"stale"`
	StaleReason  string        `json:"stale_reason,omitempty"`
	NCPUs        uint32        `json:"ncpus"`
	ABI          string        `json:"abi"`
	Sections     []SectionInfo `json:"sections"`
	Unavailable  []Unavailable `json:"unavailable"`
	Notes        []string      `json:"notes,omitempty"`
	Processes    int           `json:"processes"`
	// ProcessesNote says why Processes is not the table's own count (a
	// count beyond the table's capacity is corrupt).
	ProcessesNote string `json:"processes_note,omitempty"`
}

func stateName(s uint32) string {
	switch s {
	case abi.StateStarting:
		return "starting"
	case abi.StateRunning:
		return "running"
	case abi.StateStopped:
		return "stopped"
	}
	return fmt.Sprintf("state %d", s)
}

// Status reads the region's header and info now.
//
// A region file shrunk under the mapping gives a stale status saying so.
func (c *Client) Status() Status {
	var st Status
	if err := shm.Guard(func() error { st = c.status(); return nil }); err != nil {
		return Status{Path: c.Path(), Stale: true, StaleReason: err.Error(), State: "unreadable"}
	}
	return st
}

func (c *Client) status() Status {
	h := c.r.Header()
	l := c.r.Liveness()
	st := Status{
		Path: c.Path(), ProducerName: strings.TrimSpace(h.ProducerName), PID: h.ProducerPID,
		Created: time.Unix(0, int64(h.CreatedRealNs)), Generation: h.Generation,
		State: stateName(h.State), HeartbeatAge: l.Age, Stale: l.Stale, StaleReason: l.Reason,
		NCPUs: h.NCPUs, ABI: fmt.Sprintf("%d.%d", h.ABIMajor, h.ABIMinor),
		Unavailable: c.Unavailable(), Notes: c.Notes(),
	}
	switch h.ProducerKind {
	case abi.ProducerKernel:
		st.Producer = "kernel module"
	case abi.ProducerDaemon:
		st.Producer = "daemon"
	case abi.ProducerApp:
		st.Producer = "application"
	default:
		st.Producer = shm.ProducerKindName(h.ProducerKind)
	}
	for _, s := range c.r.Sections() {
		st.Sections = append(st.Sections, SectionInfo{
			Name: s.Name, Kind: shm.KindName(s.Kind), Size: s.Size, Count: s.Count,
			External: s.External(), Missing: s.Missing, MissingReason: sanitize.Line(s.MissingReason),
			Writable: s.Flags&abi.SecFlagUserWritable != 0,
		})
	}
	if c.procs != nil {
		st.Processes, st.ProcessesNote = processCount(c.procs.Stats().Count, c.procs.Capacity())
	}
	return st
}

// processCount is the table's live count as a reader may show it: at
// most its capacity (a region may claim 2^64-1).
func processCount(count uint64, capacity int) (int, string) {
	if count > uint64(capacity) {
		return capacity, fmt.Sprintf("the table claims %d, more than its capacity: corrupt count", count)
	}
	return int(count), ""
}
