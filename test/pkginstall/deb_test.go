package pkginstall_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
)

// debFile returns the package under test, or skips.
func debFile(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("TQFLOW_DEB")
	if deb == "" {
		t.Skip("TQFLOW_DEB is not set: make test-package builds the .deb and runs this test")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("no dpkg on this machine")
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root needs root to set the files' owners")
	}
	return deb
}

// cleanRoot makes an empty system root: a dpkg database and the account
// files of a fresh Debian, nothing else.
func cleanRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	files := map[string]string{
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(r, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// dpkg runs dpkg on root; the maintainer scripts run outside a chroot
// with DPKG_ROOT set, which they honour.
func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// accountID returns the id of name in root's passwd or group file.
func accountID(t *testing.T, root, file, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc", file))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) > 2 && fields[0] == name {
			return fields[2]
		}
	}
	return ""
}

// TestDebInstallUpgradePurge: the .deb installs into a clean root with its
// own system user, the binary, the seed connectors' names as links, the
// hardened unit (systemd-analyze verify) and a configuration readable by
// the tqflow group only; an upgrade keeps a changed configuration; purge
// removes every file, the configuration and the state.
func TestDebInstallUpgradePurge(t *testing.T) {
	t.Parallel()
	deb := debFile(t)
	// The test opens up its own directories for the tqflow user; the
	// machine's temporary directory must keep its mode (1777), or every
	// later program that writes there (apt-key, for one) breaks.
	if before, err := os.Stat(os.TempDir()); err == nil {
		t.Cleanup(func() {
			if after, err := os.Stat(os.TempDir()); err == nil && after.Mode() != before.Mode() {
				t.Errorf("%s went from mode %v to %v", os.TempDir(), before.Mode(), after.Mode())
			}
		})
	}
	root := cleanRoot(t)
	dpkg(t, root, "-i", deb)

	uid, gid := accountID(t, root, "passwd", "tqflow"), accountID(t, root, "group", "tqflow")
	if uid == "" || gid == "" {
		t.Fatalf("no tqflow user (%q) or group (%q) in the root", uid, gid)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	if fi, err := os.Stat(at("usr/bin/tqflow")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("/usr/bin/tqflow: %v %v", fi, err)
	}
	for _, s := range []string{"tq-conn-ctr-enrichment", "tq-misp-export", "tq-conn-emerging-threats", "tq-emergingthreats"} {
		if dst, err := os.Readlink(at("usr/bin/" + s)); err != nil || dst != "tqflow" {
			t.Errorf("/usr/bin/%s -> %q (%v), want a link to tqflow", s, dst, err)
		}
	}
	for p, mode := range map[string]os.FileMode{"etc/tqflow": 0o750 | os.ModeDir, "etc/tqflow/tqflow.env": 0o640} {
		fi, err := os.Stat(at(p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("/%s mode %v, want %v", p, fi.Mode(), mode)
		}
		if g := statGID(fi); g != gid {
			t.Errorf("/%s group %s, want tqflow's %s", p, g, gid)
		}
	}
	unit, err := os.ReadFile(at("usr/lib/systemd/system/tqflow.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=tqflow", "StateDirectory=tqflow", "ProtectSystem=strict", "NoNewPrivileges=true", "ExecStart=/usr/bin/tqflow run"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("unit lacks %s", want)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// The host's systemd checks the unit, with its command moved to
		// where the root has it (a bare root has no systemd targets).
		moved := filepath.Join(t.TempDir(), "tqflow.service")
		if err := os.WriteFile(moved, bytes.ReplaceAll(unit, []byte("/usr/bin/tqflow"), []byte(at("usr/bin/tqflow"))), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", "--man=no", moved).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		out, err = exec.Command(sa, "security", "--offline=yes", "--threshold=20", moved).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security: exposure above 2.0: %v\n%s", err, out)
		}
	}
	conffiles, err := os.ReadFile(at("var/lib/dpkg/info/tqflow.conffiles"))
	if err != nil || !bytes.Contains(conffiles, []byte("/etc/tqflow/tqflow.env")) {
		t.Errorf("tqflow.env is not a conffile: %q %v", conffiles, err)
	}
	// The installed links dispatch on their name.
	out, _ := exec.Command(at("usr/bin/tq-misp-export"), "-h").CombinedOutput()
	if !strings.Contains(string(out), "misp job") {
		t.Errorf("tq-misp-export -h:\n%s", out)
	}

	unitRunsAPass(t, root, string(unit), uid, gid)

	// An upgrade (the same package again) keeps the operator's settings.
	mine := []byte("JOBS=misp\nMISP_URL=https://misp.example\n")
	if err := os.WriteFile(at("etc/tqflow/tqflow.env"), mine, 0o640); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "-i", deb)
	if got, _ := os.ReadFile(at("etc/tqflow/tqflow.env")); !bytes.Equal(got, mine) {
		t.Errorf("the upgrade replaced the configuration:\n%s", got)
	}

	// Purge leaves nothing behind but the user (Debian keeps users).
	if err := os.MkdirAll(at("var/lib/tqflow/nats"), 0o750); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "--purge", "tqflow")
	for _, p := range []string{"usr/bin/tqflow", "usr/bin/tq-misp-export", "usr/lib/systemd/system/tqflow.service", "etc/tqflow", "var/lib/tqflow"} {
		if _, err := os.Lstat(at(p)); !os.IsNotExist(err) {
			t.Errorf("/%s is still there after purge (%v)", p, err)
		}
	}
	if out := dpkg(t, root, "-l"); strings.Contains(out, "ii  tqflow") {
		t.Errorf("still installed:\n%s", out)
	}
}

// unitRunsAPass: the installed tqflow init (non-interactive) fills the
// packaged /etc/tqflow/tqflow.env for the sandbox and keeps it 0640
// root:tqflow; then the unit's own command line, with its Environment, run
// as the tqflow user (no systemd here to start it) with --once added,
// reads that file and runs a pass against the sandbox.
func unitRunsAPass(t *testing.T, root, unit, uid, gid string) {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Seed: 9, Indicators: 30, ContextShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	at := func(p string) string { return filepath.Join(root, p) }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	init := exec.CommandContext(ctx, at("usr/bin/tqflow"), "init", "--non-interactive", "-c", at("etc/tqflow"),
		"--jobs", "ctr", "--threatq-url", sb.ThreatQURL, "--threatq-email", tqsim.DefaultUser.Email,
		"--threatq-client-id", tqsim.DefaultUser.ClientID, "--ctr-client-id", ctrsim.DefaultClientID,
		"--ctr-saved-search", sandbox.SavedSearch, "--set", "CTR_BASE_URL="+sb.CTRURL, "--set", "METRICS_ADDR=127.0.0.1:0")
	init.Env = []string{"THREATQ_PASSWORD=" + tqsim.DefaultUser.Password, "CTR_CLIENT_PASSWORD=" + ctrsim.DefaultClientPassword}
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("tqflow init: %v\n%s", err, out)
	}
	fi, err := os.Stat(at("etc/tqflow/tqflow.env"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || statGID(fi) != gid {
		t.Errorf("after init: tqflow.env mode %v group %s, want 0640 and tqflow's %s", fi.Mode().Perm(), statGID(fi), gid)
	}

	var args, env []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			args = strings.Fields(strings.ReplaceAll(v, "/etc/tqflow", at("etc/tqflow")))
		}
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			env = append(env, v)
		}
	}
	if len(args) == 0 {
		t.Fatal("no ExecStart in the unit")
	}
	// The state directory systemd would make, owned by the user.
	state := filepath.Join(root, "var/lib/tqflow")
	if err := os.MkdirAll(state, 0o750); err != nil {
		t.Fatal(err)
	}
	u, _ := strconv.Atoi(uid)
	g, _ := strconv.Atoi(gid)
	if err := os.Chown(state, u, g); err != nil {
		t.Fatal(err)
	}
	for i, e := range env {
		env[i] = strings.ReplaceAll(e, "/var/lib/tqflow", state)
	}
	// The tqflow user must reach the root, as it reaches / on a host: the
	// test's directories below the temporary directory are opened up, and
	// the temporary directory itself (1777, shared) is left alone.
	tmp := filepath.Clean(os.TempDir()) + string(filepath.Separator)
	for d := root; strings.HasPrefix(d, tmp); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, strings.Replace(args[0], "/usr/bin/tqflow", at("usr/bin/tqflow"), 1), append(args[1:], "--once")...)
	cmd.Env = env
	cmd.Dir = state
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(g)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the unit's command as the tqflow user: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "indicators read") {
		t.Errorf("no summary from the unit's command:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(state, "nats")); err != nil {
		t.Errorf("the NATS store is not in the state directory: %v", err)
	}
}
