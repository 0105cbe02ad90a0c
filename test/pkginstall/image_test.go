package pkginstall_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The systemd test boots a minimal Debian with systemd as PID 1 in a
// container. No image can be pulled here, so the root is built with
// debootstrap from the Debian mirror apt uses and imported with docker
// import. Both the root's tarball (in the cache directory) and the image
// are reused, keyed by a hash of the recipe below.

// Recipe of the root: changing any of it makes a new image.
const (
	debianSuite   = "bookworm"
	debianVariant = "minbase"
	// recipeVersion is bumped when the root is made differently.
	recipeVersion = "1"
)

// debianPackages are the packages debootstrap adds: systemd as init, and
// dbus, which systemctl needs to talk to it.
var debianPackages = []string{"systemd", "systemd-sysv", "dbus"}

// imageBuildTimeout bounds debootstrap, which takes about a minute and a
// half on the CI machine.
const imageBuildTimeout = 8 * time.Minute

// recipeKey is the hash naming the root's tarball and the image's tag.
func recipeKey() string {
	h := sha256.Sum256([]byte(strings.Join([]string{debianSuite, debianVariant, strings.Join(debianPackages, ","), recipeVersion}, "\n")))
	return hex.EncodeToString(h[:6])
}

// cacheDir is where the root's tarball is kept between runs:
// TQFLOW_TEST_CACHE, else /var/cache/tqflow-test (the test runs as root).
func cacheDir() string {
	if d := os.Getenv("TQFLOW_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/tqflow-test"
}

// systemdImage returns the tag of a local image of a Debian root with
// systemd, importing or building it first when it is not there.
func systemdImage(t testing.TB) string {
	t.Helper()
	tag := "tqflow-systemd-test:" + debianSuite + "-" + recipeKey()
	if docker(context.Background(), "image", "inspect", tag) == nil {
		return tag
	}
	dir := cacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make the test cache %s: %v", dir, err)
	}
	// One build at a time: other test runs on this machine wait for it.
	unlock, err := lockFile(filepath.Join(dir, "debian.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if docker(context.Background(), "image", "inspect", tag) == nil {
		return tag
	}
	ctx, cancel := context.WithTimeout(context.Background(), imageBuildTimeout)
	defer cancel()
	tarball := filepath.Join(dir, "debian-"+debianSuite+"-"+recipeKey()+".tar")
	if _, err := os.Stat(tarball); err != nil {
		if _, err := exec.LookPath("debootstrap"); err != nil {
			skipOrFail(t, "no debootstrap (apt-get install debootstrap): the systemd test builds its Debian root with it")
		}
		start := time.Now()
		if err := buildRoot(ctx, dir, tarball); err != nil {
			t.Fatalf("build the Debian root for the systemd test: %v", err)
		}
		t.Logf("built %s in %v", tarball, time.Since(start).Round(time.Second))
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, "docker", "import", "--change", `CMD ["/sbin/init"]`, tarball, tag).CombinedOutput()
	if err != nil {
		t.Fatalf("docker import %s: %v\n%s", tarball, err, out)
	}
	t.Logf("imported %s as %s in %v", tarball, tag, time.Since(start).Round(time.Second))
	return tag
}

// buildRoot debootstraps a Debian root into a directory beside tarball
// and packs it there, atomically: an interrupted build leaves no tarball.
func buildRoot(ctx context.Context, dir, tarball string) error {
	root, err := os.MkdirTemp(dir, "root-")
	if err != nil {
		return fmt.Errorf("make the root's directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(root) }()
	mirror := aptMirror()
	args := []string{"--variant=" + debianVariant, "--include=" + strings.Join(debianPackages, ","), debianSuite, root, mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap %s: %w\n%s", strings.Join(args, " "), err, tail(out, 40))
	}
	tmp := tarball + ".part"
	if out, err := exec.CommandContext(ctx, "tar", "--numeric-owner", "-C", root, "-cf", tmp, ".").CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("pack the root: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return fmt.Errorf("pack the root: %w", err)
	}
	return nil
}

// aptMirror returns the Debian mirror this machine's apt is configured
// with (the one known to be reachable), else deb.debian.org.
// TQFLOW_DEBIAN_MIRROR overrides both.
func aptMirror() string {
	if m := os.Getenv("TQFLOW_DEBIAN_MIRROR"); m != "" {
		return m
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		if m := mirrorInSources(f); m != "" {
			return m
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		if m := mirrorInList(f); m != "" {
			return m
		}
	}
	return "http://deb.debian.org/debian"
}

// mirrorInSources reads a deb822 .sources file: the first stanza whose
// Suites has the suite, of a main Debian archive (not security).
func mirrorInSources(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, stanza := range strings.Split(string(data), "\n\n") {
		var uris, suites []string
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			switch strings.TrimSpace(k) {
			case "URIs":
				uris = strings.Fields(v)
			case "Suites":
				suites = strings.Fields(v)
			}
		}
		for _, s := range suites {
			if s == debianSuite && len(uris) > 0 {
				return uris[0]
			}
		}
	}
	return ""
}

// mirrorInList reads a one-line-style sources.list: "deb [opts] URI suite ...".
func mirrorInList(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) > 0 {
				fields = fields[1:]
			}
		}
		if len(fields) >= 2 && fields[1] == debianSuite {
			return fields[0]
		}
	}
	return ""
}

// lockFile takes an exclusive lock on path, waiting for it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}

// docker runs a docker command, returning its output in the error.
func docker(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
