package pkginstall_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/sim/ctrsim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	"github.com/tqflow/tqflow/pkg/sim/tqsim"
)

// skipOrFail skips the test saying why, except in CI (CI set), which must
// never skip it.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(reason + " (CI is set: CI must not skip this test)")
	}
	t.Skip(reason)
}

// needSystemdBox skips (fails in CI) where no container can be made: no
// Docker daemon.
func needSystemdBox(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		skipOrFail(t, "no docker command: the systemd test boots a container")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := docker(ctx, "info"); err != nil {
		skipOrFail(t, "no Docker daemon answers: the systemd test boots a container")
	}
}

// box is a running container with systemd as PID 1.
type box struct {
	t    testing.TB
	name string
}

// bootSystemd starts a container of image with systemd as PID 1 and waits
// for it to be up; the container is removed at cleanup. It shares the
// host's network, so the units reach the sandbox on 127.0.0.1.
//
// systemd needs CAP_SYS_ADMIN and an unconfined seccomp profile to set up
// a unit's namespaces and its own filters, and CAP_SYS_PTRACE to see its
// children under ProtectProc=invisible, as it has on a host. --privileged
// would give those, but this host's own capability set lacks one it asks
// for. The cgroup tree is the host's, read-only (cgroup v1).
func bootSystemd(t testing.TB, image string) *box {
	t.Helper()
	var id [4]byte
	_, _ = rand.Read(id[:])
	b := &box{t: t, name: "tqflow-systemd-test-" + hex.EncodeToString(id[:])}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := docker(ctx, "run", "-d", "--name", b.name, "--network", "host",
		"--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro", "-e", "container=docker",
		image, "/sbin/init")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := docker(ctx, "rm", "-f", "-v", b.name); err != nil {
			t.Errorf("remove the container: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("start the container: %v", err)
	}
	// degraded is up too: a unit of the minimal system that cannot run
	// in a container is not the package's concern.
	// Until systemd has its bus up, systemctl cannot ask it anything.
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := b.exec(90*time.Second, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd in the container did not come up in 90 s: %q %v\n%s", state, err, b.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exec runs a command in the container (as root), bounded by d.
func (b *box) exec(d time.Duration, args ...string) (string, error) {
	return b.execEnv(d, nil, args...)
}

// execEnv runs a command in the container with env (KEY=VALUE) added to
// its environment. docker exec is given the names only and reads the
// values from its own environment, so no secret is on a command line.
func (b *box) execEnv(d time.Duration, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	dargs := []string{"exec"}
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		dargs = append(dargs, "-e", name)
	}
	cmd := exec.CommandContext(ctx, "docker", append(append(dargs, b.name), args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// must runs a command in the container and fails the test, with the
// unit's journal, when it fails.
func (b *box) must(args ...string) string {
	b.t.Helper()
	out, err := b.exec(2*time.Minute, args...)
	if err != nil {
		b.fatalf("%v\n%s", err, out)
	}
	return out
}

// fatalf fails the test with the tqflow unit's journal appended.
func (b *box) fatalf(format string, args ...any) {
	b.t.Helper()
	b.t.Fatalf(format+"\n--- journalctl -u tqflow:\n%s", append(args, b.journal())...)
}

// mainPID returns the tqflow unit's main process id, "0" when none.
func (b *box) mainPID() string {
	b.t.Helper()
	return strings.TrimPrefix(strings.TrimSpace(b.must("systemctl", "show", "-p", "MainPID", "tqflow")), "MainPID=")
}

func (b *box) journal() string {
	out, err := b.exec(30*time.Second, "journalctl", "-u", "tqflow", "--no-pager", "-o", "short-precise")
	if err != nil {
		return fmt.Sprintf("(%v)\n%s", err, out)
	}
	return tail([]byte(out), 60)
}

func (b *box) logs() string {
	out, _ := b.exec(30*time.Second, "journalctl", "-b", "--no-pager", "-n", "60")
	return out
}

// TestDebUnderSystemd: on a Debian with systemd as PID 1 the .deb
// installs (its scripts make the tqflow user), tqflow init writes the
// settings for the sandbox, systemctl enable --now starts the hardened
// unit, which runs a CTR pass against the sandbox; tqflow status, run as
// the README says, shows that pass; the unit stops cleanly, and purge
// removes the files, the unit, the configuration and the state.
func TestDebUnderSystemd(t *testing.T) {
	t.Parallel()
	deb := debFile(t)
	needSystemdBox(t)
	image := systemdImage(t)

	sb, err := sandbox.Start(sandbox.Options{Seed: 14, Indicators: 40, ContextShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)

	b := bootSystemd(t, image)
	// Not /tmp: the container's /tmp is a tmpfs that docker cp does not see.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := docker(ctx, "cp", deb, b.name+":/root/tqflow.deb"); err != nil {
		t.Fatal(err)
	}
	out := b.must("dpkg", "-i", "/root/tqflow.deb")
	if !strings.Contains(out, "tqflow installed") {
		t.Errorf("dpkg -i did not show the next steps:\n%s", out)
	}
	passwd := b.must("getent", "passwd", "tqflow")
	if !strings.Contains(passwd, ":/var/lib/tqflow:/usr/sbin/nologin") {
		t.Errorf("tqflow user: %q", passwd)
	}
	// systemd knows the unit without the operator reloading it.
	if out := b.must("systemctl", "show", "-p", "LoadState,UnitFileState", "tqflow"); !strings.Contains(out, "LoadState=loaded") {
		b.fatalf("systemd does not know the unit after dpkg -i:\n%s", out)
	}

	// Started before tqflow init, on the packaged settings, the unit fails
	// at once with the configuration's problems, without restarting.
	b.must("systemctl", "start", "tqflow")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out := b.must("systemctl", "show", "-p", "ActiveState,SubState,ExecMainStatus,NRestarts", "tqflow")
		if strings.Contains(out, "ActiveState=failed") {
			if !strings.Contains(out, "ExecMainStatus=2") || !strings.Contains(out, "NRestarts=0") {
				b.fatalf("unconfigured, the unit failed otherwise than on its configuration, once:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			b.fatalf("unconfigured, the unit did not fail within 30 s:\n%s", out)
		}
	}
	if j := b.journal(); !strings.Contains(j, "THREATQ_URL is required") {
		t.Errorf("the journal does not say what to configure:\n%s", j)
	}
	b.must("systemctl", "reset-failed", "tqflow")

	// The README's steps: sudo tqflow init -c /etc/tqflow (here with
	// every answer given), then sudo systemctl enable --now tqflow.
	out, err = b.execEnv(2*time.Minute,
		[]string{"THREATQ_PASSWORD=" + tqsim.DefaultUser.Password, "CTR_CLIENT_PASSWORD=" + ctrsim.DefaultClientPassword},
		"tqflow", "init", "--non-interactive", "-c", "/etc/tqflow",
		"--jobs", "ctr", "--threatq-url", sb.ThreatQURL, "--threatq-email", tqsim.DefaultUser.Email,
		"--threatq-client-id", tqsim.DefaultUser.ClientID, "--ctr-client-id", ctrsim.DefaultClientID,
		"--ctr-saved-search", sandbox.SavedSearch, "--set", "CTR_BASE_URL="+sb.CTRURL,
		// Host network: the default 127.0.0.1:9090 may be taken.
		"--set", "METRICS_ADDR=127.0.0.1:0")
	if err != nil {
		t.Fatalf("tqflow init: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(b.must("stat", "-c", "%a %U:%G", "/etc/tqflow/tqflow.env")); got != "640 root:tqflow" {
		t.Errorf("/etc/tqflow/tqflow.env after init: %s, want 640 root:tqflow", got)
	}
	b.must("systemctl", "enable", "--now", "tqflow")

	// A pass: the CTR simulator was asked, and tqflow status (as root,
	// from root's home, with nothing set) shows the ctr job's checkpoint.
	var st statusJSON
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if state, _ := b.exec(30*time.Second, "systemctl", "is-active", "tqflow"); strings.TrimSpace(state) != "active" {
			b.fatalf("tqflow.service is %q, not active", strings.TrimSpace(state))
		}
		out, err = b.exec(30*time.Second, "sh", "-c", "cd /root && tqflow status --json")
		if err == nil {
			st = statusJSON{}
			if jerr := json.Unmarshal([]byte(out), &st); jerr != nil {
				b.fatalf("tqflow status --json: %v\n%s", jerr, out)
			}
			if st.passed("ctr") && len(sb.CTR.Requests()) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.fatalf("no CTR pass shown by tqflow status within 2 minutes (%d CTR requests); last status: %v\n%s", len(sb.CTR.Requests()), err, out)
		}
		time.Sleep(time.Second)
	}
	// The table form answers too, naming the job.
	if out := b.must("sh", "-c", "cd /root && tqflow status"); !strings.Contains(out, "ctr") {
		b.fatalf("tqflow status does not show the ctr job:\n%s", out)
	}

	// An upgrade (the same package again) leaves the unit enabled and
	// running, restarted on the new files, and the settings as they were.
	env := b.must("cat", "/etc/tqflow/tqflow.env")
	before := b.mainPID()
	b.must("dpkg", "-i", "/root/tqflow.deb")
	if out := b.must("systemctl", "show", "-p", "UnitFileState,ActiveState", "tqflow"); !strings.Contains(out, "UnitFileState=enabled") || !strings.Contains(out, "ActiveState=active") {
		b.fatalf("after an upgrade the unit is not enabled and active:\n%s", out)
	}
	if after := b.mainPID(); after == before {
		t.Errorf("the upgrade did not restart the unit (pid %s before and after)", before)
	}
	if got := b.must("cat", "/etc/tqflow/tqflow.env"); got != env {
		t.Errorf("the upgrade changed tqflow.env:\n%s", got)
	}

	// The hardening holds under the real systemd: the process has no
	// capabilities, no new privileges, a seccomp filter, its own user.
	pid := b.mainPID()
	proc := b.must("cat", "/proc/"+pid+"/status")
	for _, want := range []string{"CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(proc, want) {
			t.Errorf("the unit's process (pid %s) lacks %q:\n%s", pid, want, proc)
		}
	}
	if user := strings.TrimSpace(b.must("stat", "-c", "%U", "/proc/"+pid)); user != "tqflow" {
		t.Errorf("the unit runs as %q, want tqflow", user)
	}
	out, err = b.exec(time.Minute, "systemd-analyze", "security", "--no-pager", "--threshold=20", "tqflow")
	if err != nil {
		t.Errorf("systemd-analyze security tqflow: exposure above 2.0 or not rated: %v\n%s", err, tail([]byte(out), 5))
	} else {
		t.Logf("systemd-analyze security: %s", strings.TrimSpace(tail([]byte(out), 1)))
	}

	// Stop: the workers drain and tqflow run exits 0, removing its record
	// of the server.
	b.must("systemctl", "stop", "tqflow")
	if out := b.must("systemctl", "show", "-p", "Result,ExecMainStatus", "tqflow"); !strings.Contains(out, "Result=success") || !strings.Contains(out, "ExecMainStatus=0") {
		b.fatalf("tqflow did not stop cleanly:\n%s", out)
	}
	if out, err := b.exec(30*time.Second, "test", "-e", "/var/lib/tqflow/nats/context.json"); err == nil {
		t.Errorf("context.json is left after the stop\n%s", out)
	}

	// Purge removes the package's files, the unit (disabled and unknown
	// to systemd), the configuration and the state. The user stays, as
	// Debian's policy asks (postremove.sh).
	b.must("dpkg", "--purge", "tqflow")
	for _, p := range []string{"/usr/bin/tqflow", "/usr/bin/tq-misp-export", "/usr/lib/systemd/system/tqflow.service",
		"/lib/systemd/system/tqflow.service", "/etc/systemd/system/multi-user.target.wants/tqflow.service",
		"/usr/lib/sysusers.d/tqflow.conf", "/etc/tqflow", "/var/lib/tqflow", "/usr/share/doc/tqflow"} {
		if _, err := b.exec(30*time.Second, "test", "-e", p); err == nil {
			t.Errorf("%s is still there after purge", p)
		}
	}
	if out := b.must("systemctl", "show", "-p", "LoadState", "tqflow"); !strings.Contains(out, "LoadState=not-found") {
		t.Errorf("systemd still knows the unit after purge:\n%s", out)
	}
	// dpkg forgets a purged package, or lists it as not-installed.
	if out, err := b.exec(30*time.Second, "dpkg-query", "-W", "-f", "${db:Status-Status}", "tqflow"); err == nil && strings.TrimSpace(out) != "not-installed" {
		t.Errorf("dpkg status after purge: %q", out)
	}
	if _, err := b.exec(30*time.Second, "getent", "passwd", "tqflow"); err != nil {
		t.Errorf("the tqflow user went with the purge; the package promises to keep it: %v", err)
	}
}

// statusJSON is the part of tqflow status --json the test reads.
type statusJSON struct {
	Checkpoints []struct {
		Job       string    `json:"job"`
		Published int       `json:"published"`
		At        time.Time `json:"at"`
	} `json:"checkpoints"`
}

// passed reports whether job has finished a pass that published.
func (s statusJSON) passed(job string) bool {
	for _, c := range s.Checkpoints {
		if c.Job == job && !c.At.IsZero() && c.Published > 0 {
			return true
		}
	}
	return false
}
