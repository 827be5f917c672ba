package shm

import (
	"errors"

	"github.com/kushm/kushm/internal/errs"
)

// Sentinel errors. Functions wrap them with context ("open region
// /dev/shm/kushm: section \"pmu\": %w"); test with errors.Is.
var (
	// ErrClosed: the region was closed (its views read zeros since); it
	// refines kushm's errs.ErrClosed.
	ErrClosed = errs.Refine(errs.ErrClosed, "region closed")
	// ErrBadMagic: the bytes are not a kushm region (or not published yet).
	ErrBadMagic = errors.New("not a kushm region (bad magic)")
	// ErrABIMismatch: the region's ABI major version is not one this
	// reader knows.
	ErrABIMismatch = errors.New("unsupported region ABI version")
	// ErrTruncated: the mapping is smaller than the header says.
	ErrTruncated = errors.New("region truncated")
	// ErrCorrupt: a header, section or structure field is out of range.
	ErrCorrupt = errors.New("region corrupt")
	// ErrStaleProducer: the producer stopped, or its heartbeat is older
	// than the period it promised: the data is no longer refreshed.
	ErrStaleProducer = errors.New("producer is stale")
	// ErrReadOnly: a write was attempted through a read-only mapping.
	ErrReadOnly = errors.New("region section is read-only")
	// ErrNoSection: the region has no section of that name or kind.
	ErrNoSection = errors.New("no such section")
	// ErrNoRegion: no region exists at the path (no producer running).
	ErrNoRegion = errors.New("no kushm region")
	// ErrRetry: a seq-validated read gave up after abi.MaxRetries
	// attempts because the writer kept changing the data (or died
	// mid-update). Retrying later may succeed.
	ErrRetry = errors.New("read retry budget exhausted")
	// ErrFull: a fixed-capacity structure refused an insert.
	ErrFull = errors.New("structure full")
	// ErrNotFound: a key is not present.
	ErrNotFound = errors.New("key not found")
	// ErrExists: the path is taken by something that is not a kushm region.
	ErrExists = errors.New("path taken by another file")
)

// More sentinels for files that are not what they claim.
var (
	// ErrUntrusted: a discovered region file (or its .ctl) is owned by a
	// user the reader does not trust to produce it (not root, not itself,
	// not a configured producer uid).
	ErrUntrusted = errors.New("region file not owned by a trusted producer")
	// ErrChanged: the region or control file shrank, or was replaced,
	// while mapped; the mapping can no longer be read safely.
	ErrChanged = errors.New("region file shrank or was replaced while mapped")
)
