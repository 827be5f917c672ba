// Package cgroup2 finds the cgroup v2 hierarchy of a machine and names its
// cgroups: the id of a cgroup (the inode number of its directory, what
// bpf_get_current_cgroup_id returns and what the kushm "cgroups" section
// is keyed by) is resolved to its path relative to the hierarchy's root,
// "/system.slice/foo.service".
//
// The hierarchy is found from <root>/proc/self/mountinfo, never assumed:
// on a unified machine it is /sys/fs/cgroup; on a hybrid one (systemd's
// "hybrid" layout, e.g. this project's build machine) /sys/fs/cgroup is a
// tmpfs of v1 hierarchies and cgroup2 is at /sys/fs/cgroup/unified.
//
// Errors: ErrNoCgroup2 when no cgroup2 mount exists (a v1-only machine),
// ErrSyntax (wrapped, naming the line) for a mountinfo line that does not
// parse, and the fs errors of the walk (a cgroup that vanishes while it is
// walked is skipped, not an error). A Resolver is safe for concurrent use;
// it holds no file descriptor.
package cgroup2
