package pkginstall_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
