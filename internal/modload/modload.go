package modload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kushm/kushm/internal/errs"
	"github.com/kushm/kushm/internal/sys"
)

// Name is the module's name.
const Name = "kushm"

// Sentinel errors; see the package documentation. ErrPermission and
// ErrBusy refine kushm's family (internal/errs): errors.Is(err,
// pmu.ErrPermission) holds for them too.
var (
	ErrPermission      = errs.Refine(errs.ErrPermission, "permission denied: loading modules needs root (CAP_SYS_MODULE)")
	ErrSignature       = errors.New("module signature enforcement refused the module (sign it, or disable module.sig_enforce / lockdown)")
	ErrVersionMagic    = errors.New("the module was built for another kernel (version magic or symbol versions differ): rebuild it against this kernel's headers")
	ErrLoaded          = errors.New("module already loaded")
	ErrNotLoaded       = errors.New("module not loaded")
	ErrBusy            = errs.Refine(errs.ErrBusy, "module in use (a process has /dev/kushm or the debugfs region open or mapped)")
	ErrModulesDisabled = errors.New("module loading is disabled on this kernel")
	ErrBadParam        = errors.New("the module refused its parameters (see dmesg)")
)

// Root is prepended to /sys paths (fixtures); "" or "/" is the real system.
type Root string

func (r Root) path(p string) string {
	if r == "" || r == "/" {
		return p
	}
	return filepath.Join(string(r), p)
}

// Loaded reports whether the module is loaded.
func (r Root) Loaded() bool {
	_, err := os.Stat(r.path("/sys/module/" + Name + "/initstate"))
	return err == nil
}

// Params returns the loaded module's parameters (name -> value).
func (r Root) Params() (map[string]string, error) {
	dir := r.path("/sys/module/" + Name + "/parameters")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read module parameters: %w", ErrNotLoaded)
		}
		return nil, fmt.Errorf("read module parameters: %w", err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			out[e.Name()] = strings.TrimSpace(string(b))
		}
	}
	return out, nil
}

// FormatParams renders parameters as the kernel wants them: "k=v k=v",
// sorted for a stable result. Values with spaces are quoted.
func FormatParams(params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := params[k]
		if strings.ContainsAny(v, " \t") {
			v = `"` + v + `"`
		}
		b.WriteString(k + "=" + v)
	}
	return b.String()
}

// ParseParams parses "k=v" strings (the --param flag).
func ParseParams(kv []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range kv {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t=") {
			return nil, fmt.Errorf("parameter %q: want name=value", s)
		}
		out[k] = v
	}
	return out, nil
}

// Load loads the module file path with params (finit_module). A
// compressed file (kushm.ko.xz, .zst or .gz: what DKMS installs on kernels
// that compress their modules, such as Debian's 6.12) is handed to the
// kernel to decompress.
func Load(path string, params map[string]string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	defer f.Close()
	if compressed(path) {
		err = sys.FinitModuleCompressed(int(f.Fd()), FormatParams(params))
		if errors.Is(err, sys.EINVAL) || errors.Is(err, sys.EOPNOTSUPP) || errors.Is(err, sys.ENOEXEC) {
			// The kernel decompresses only what kbuild compresses (xz
			// with CRC32 and a 1 MiB dictionary; DKMS's xz uses its
			// defaults: "decompression failed with status 6"), or
			// nothing (no CONFIG_MODULE_DECOMPRESS): decompress here,
			// as modprobe does, and load the image.
			img, derr := decompress(path)
			if derr != nil {
				return fmt.Errorf("load %s: the kernel could not decompress it (%w), nor could we: %w", path, err, derr)
			}
			err = sys.InitModule(img, FormatParams(params))
		}
	} else {
		err = sys.FinitModule(int(f.Fd()), FormatParams(params))
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("load %s: %w", path, loadError(err))
}

// maxModule bounds a decompressed module image.
const maxModule = 256 << 20

// decompress returns the module image of a compressed module file, with
// the system's xz, zstd or gzip (busybox's applets will do).
func decompress(path string) ([]byte, error) {
	var tool string
	switch {
	case strings.HasSuffix(path, ".xz"):
		tool = "xz"
	case strings.HasSuffix(path, ".zst"):
		tool = "zstd"
	default:
		tool = "gzip"
	}
	c := exec.Command(tool, "-dc", path)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &limitWriter{&out, maxModule}, &errb
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("%s -dc %s: %w: %s", tool, path, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

type limitWriter struct {
	b *bytes.Buffer
	n int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.n {
		return 0, fmt.Errorf("decompressed module larger than %d bytes", w.n)
	}
	return w.b.Write(p)
}

func compressed(path string) bool {
	for _, ext := range []string{".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(path, ext) {
			return true
		}
	}
	return false
}

func loadError(err error) error {
	switch {
	case errors.Is(err, sys.EEXIST):
		return fmt.Errorf("%w (%w)", ErrLoaded, err)
	case errors.Is(err, sys.EPERM):
		if disabled() {
			return fmt.Errorf("%w (%w)", ErrModulesDisabled, err)
		}
		return fmt.Errorf("%w (%w)", ErrPermission, err)
	case errors.Is(err, sys.EKEYREJECTED), errors.Is(err, sys.ENOKEY), errors.Is(err, sys.EBADMSG):
		return fmt.Errorf("%w (%w)", ErrSignature, err)
	case errors.Is(err, sys.EACCES):
		// Lockdown or sig_enforce answer EACCES/EPERM for unsigned modules.
		return fmt.Errorf("%w (%w)", ErrSignature, err)
	case errors.Is(err, sys.ENOEXEC):
		return fmt.Errorf("%w (%w)", ErrVersionMagic, err)
	case errors.Is(err, sys.EINVAL):
		return fmt.Errorf("%w (%w)", ErrBadParam, err)
	case errors.Is(err, sys.ENOSYS):
		return fmt.Errorf("%w (%w)", ErrModulesDisabled, err)
	}
	return err
}

func disabled() bool {
	b, err := os.ReadFile("/proc/sys/kernel/modules_disabled")
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return true
	}
	c, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(c)) {
		if f == "nomodule" || f == "module.sig_enforce=1" {
			return true
		}
	}
	return false
}

// Unload removes the module (delete_module, O_NONBLOCK: it never waits
// for users to go away).
func Unload() error {
	err := sys.DeleteModule(Name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sys.ENOENT):
		return fmt.Errorf("unload %s: %w", Name, ErrNotLoaded)
	case errors.Is(err, sys.EWOULDBLOCK), errors.Is(err, sys.EBUSY):
		return fmt.Errorf("unload %s: %w (%w)", Name, ErrBusy, err)
	case errors.Is(err, sys.EPERM):
		return fmt.Errorf("unload %s: %w (%w)", Name, ErrPermission, err)
	}
	return fmt.Errorf("unload %s: %w", Name, err)
}

// Find returns the module file to load: explicit when non-empty, else
// the installed module of the running kernel (modinfo's search path:
// /lib/modules/$(uname -r)/{updates,extra,kernel}/**/kushm.ko).
func Find(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	rel, err := sys.KernelRelease()
	if err != nil {
		return "", fmt.Errorf("find module: %w", err)
	}
	base := "/lib/modules/" + rel
	if p, ok := findIn(base+"/modules.dep", base); ok {
		return p, nil
	}
	for _, d := range []string{"updates/dkms", "updates", "extra", "kernel/extra"} {
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst"} {
			p := filepath.Join(base, d, Name+ext)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("find module: no %s.ko installed for kernel %s (build it with 'make -C kmod' and pass --module, or install it with dkms)", Name, rel)
}

func findIn(dep, base string) (string, bool) {
	f, err := os.Open(dep)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p, _, _ := strings.Cut(sc.Text(), ":")
		if b := filepath.Base(p); b == Name+".ko" || strings.HasPrefix(b, Name+".ko.") {
			if !filepath.IsAbs(p) {
				p = filepath.Join(base, p)
			}
			return p, true
		}
	}
	return "", false
}
