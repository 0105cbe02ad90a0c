package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/huh"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/config"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/et"
	"github.com/tqflow/tqflow/pkg/logging"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/threatq"
)

// initField is one setting tqflow init asks for: what the seed connectors
// asked on their first run and in their UI settings, per job.
type initField struct {
	key, title, desc string
	secret           bool
	// yesNo asks a yes/no question; the value is "true" or "false".
	yesNo bool
	// optional fields may stay empty.
	optional bool
	// when says whether the field applies, given the answers so far.
	when func(v map[string]string) bool
}

// initGroup is the fields of one system, checked live together.
type initGroup struct {
	name   string
	job    string // "" for every job
	fields []initField
	check  func(ctx context.Context, v map[string]string) error
}

func hasSource(source string) func(map[string]string) bool {
	return func(v map[string]string) bool { return slices.Contains(splitList(v["ET_SOURCES"]), source) }
}

func initGroups() []initGroup {
	return []initGroup{
		{name: "jobs", fields: []initField{
			{key: "JOBS", title: "Jobs", desc: "comma-separated: ctr (CTR enrichment), misp (MISP export), et (ET signatures)"},
		}, check: checkJobs},
		{name: "ThreatQ", fields: []initField{
			{key: "THREATQ_URL", title: "ThreatQ host", desc: "host name or address of the ThreatQ instance, or its URL"},
			{key: "THREATQ_EMAIL", title: "E-mail address", desc: "the ThreatQ user tqflow logs in as"},
			{key: "THREATQ_PASSWORD", title: "Password", secret: true},
			{key: "THREATQ_CLIENT_ID", title: "Client ID", desc: "My Account > API Credentials in ThreatQ", secret: true},
		}, check: checkThreatQ},
		{name: "CTR enrichment", job: "ctr", fields: []initField{
			{key: "CTR_REGION", title: "CTR region", desc: "us, eu or apjc"},
			{key: "CTR_CLIENT_ID", title: "CTR client ID", desc: "client-<uuid>, from CTR's API clients"},
			{key: "CTR_CLIENT_PASSWORD", title: "CTR client password", secret: true},
			{key: "CTR_SAVED_SEARCH", title: "Saved search name", desc: "the Threat Library saved search whose indicators are enriched"},
			{key: "CTR_STATUS", title: "Status", desc: "set on every indicator CTR has context for"},
		}, check: checkCTR},
		{name: "MISP export", job: "misp", fields: []initField{
			{key: "MISP_URL", title: "MISP URL"},
			{key: "MISP_KEY", title: "MISP authorization key", desc: "MISP: Administration > List Users > Authkey", secret: true},
			{key: "MISP_SCORE_THRESHOLD", title: "Score threshold", desc: "Active indicators scored at least this are exported (0 to 10)"},
			{key: "MISP_DISABLE_SSL", title: "Skip MISP's certificate check (the seed's -ds)?", yesNo: true},
		}, check: checkMISP},
		{name: "ET signatures", job: "et", fields: []initField{
			{key: "ET_SOURCES", title: "ET sources", desc: "comma-separated: open, pro (needs an oinkcode), block"},
			{key: "ET_OINKCODE", title: "ET Pro oinkcode", secret: true, when: hasSource("pro")},
			{key: "ET_RULESETS", title: "Rulesets", desc: "comma-separated rules files (e.g. emerging-malware.rules); empty: all", optional: true},
			{key: "ET_STANDARD_STATUS", title: "Standard rule status"},
			{key: "ET_INCLUDE_NONSTANDARD", title: "Include non-standard (commented-out) rules?", yesNo: true},
			{key: "ET_NONSTANDARD_STATUS", title: "Non-standard rule status",
				when: func(v map[string]string) bool { return v["ET_INCLUDE_NONSTANDARD"] == "true" }},
		}, check: checkET},
	}
}

// initDefaults are the answers offered when nothing else gives one: the
// configuration's own defaults.
var initDefaults = map[string]string{
	"JOBS": "ctr", "CTR_REGION": "us", "CTR_STATUS": "Review", "MISP_SCORE_THRESHOLD": "0",
	"MISP_DISABLE_SSL": "false", "ET_SOURCES": "open", "ET_STANDARD_STATUS": "Active",
	"ET_INCLUDE_NONSTANDARD": "false", "ET_NONSTANDARD_STATUS": "Review",
}

// flagName is the init flag of a variable: THREATQ_URL -> --threatq-url.
func flagName(key string) string { return strings.ReplaceAll(strings.ToLower(key), "_", "-") }

type setFlag map[string]string

func (s setFlag) String() string { return "" }
func (s setFlag) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", kv)
	}
	s[k] = v
	return nil
}

func initCommand(stdin io.Reader, stdout io.Writer) app.Command {
	given := map[string]*string{}
	set := setFlag{}
	var out, secretsDir string
	var nonInteractive, noCheck, accessible bool
	return app.Command{
		Name:    "init",
		Summary: "ask for, check live and write the settings (tqflow.env), as the seed connectors' first run did",
		Usage: "tqflow init [-c DIR | --out FILE] [--non-interactive] [--secrets-dir DIR] [--threatq-url URL ...] [--set KEY=VALUE]\n" +
			"  Each answer is checked against the system it names before the file is written.",
		Flags: func(fs *flag.FlagSet) {
			for _, g := range initGroups() {
				for _, f := range g.fields {
					s := new(string)
					given[f.key] = s
					usage := f.title
					if f.desc != "" {
						usage += ": " + f.desc
					}
					fs.StringVar(s, flagName(f.key), "", usage+" ("+f.key+")")
				}
			}
			fs.Var(set, "set", "any other variable, KEY=VALUE (repeatable), e.g. CTR_BASE_URL=http://127.0.0.1:8081")
			fs.StringVar(&out, "out", "", "the file to write (default: tqflow.env in the -c directory, else ./tqflow.env)")
			fs.StringVar(&secretsDir, "secrets-dir", "", "write each secret to a 0600 file here and X_FILE=path in tqflow.env instead of the secret")
			fs.BoolVar(&nonInteractive, "non-interactive", false, "ask nothing: flags, the environment and the existing file give every answer (also when stdin is not a terminal)")
			fs.BoolVar(&noCheck, "no-check", false, "write without checking the answers against the systems")
			fs.BoolVar(&accessible, "accessible", false, "plain line-by-line prompts (screen readers; also ACCESSIBLE=1)")
		},
		Run: func(ctx context.Context, env *app.Env) error {
			path := out
			if path == "" {
				path = filepath.Join(env.Common.ConfigDir, "tqflow.env")
			}
			// Answers: defaults, then the existing file, then the
			// environment, then flags.
			vars := maps.Clone(initDefaults)
			if old, err := config.ReadEnvFile(path); err == nil {
				for k, v := range old {
					vars[k] = v
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return app.UsageError{Err: err}
			}
			asked := map[string]bool{}
			for _, g := range initGroups() {
				for _, f := range g.fields {
					if v, ok := env.Vars[f.key]; ok && v != "" {
						vars[f.key] = v
					}
					if p := given[f.key]; p != nil && *p != "" {
						vars[f.key] = *p
						asked[f.key] = true
					}
				}
			}
			for k, v := range set {
				vars[k] = v
			}
			interactive := !nonInteractive && isTerminal(stdin)
			ui := &initUI{in: stdin, out: stdout, accessible: accessible || env.Vars["ACCESSIBLE"] != ""}
			for _, g := range initGroups() {
				if g.job != "" && !slices.Contains(splitList(vars["JOBS"]), g.job) {
					continue
				}
				for attempt := 1; ; attempt++ {
					if interactive {
						if err := ui.ask(ctx, g, vars, asked); err != nil {
							return err
						}
					}
					normalise(vars)
					if noCheck {
						break
					}
					cctx, cancel := context.WithTimeout(ctx, 45*time.Second)
					err := g.check(cctx, vars)
					cancel()
					if err == nil {
						fmt.Fprintf(stdout, "✓ %s: checked\n", g.name)
						break
					}
					fmt.Fprintf(stdout, "✗ %s: %s\n", g.name, strings.ReplaceAll(err.Error(), "\n", "\n  "))
					if !interactive || attempt >= 5 {
						return fmt.Errorf("check %s settings: %w", g.name, err)
					}
					// Ask again, the answers given so far offered.
					clear(asked)
				}
			}
			if err := writeInitFile(path, secretsDir, vars); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s\nnext: tqflow run --once -c %s   (one pass), or systemctl enable --now tqflow\n", path, filepath.Dir(path))
			return nil
		},
	}
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && logging.IsTerminal(f)
}

// normalise turns a bare ThreatQ host into its URL, as the seeds took a
// host.
func normalise(v map[string]string) {
	if u := strings.TrimSpace(v["THREATQ_URL"]); u != "" && !strings.Contains(u, "://") {
		v["THREATQ_URL"] = "https://" + u
	}
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// initUI asks a group's questions with huh.
type initUI struct {
	in         io.Reader
	out        io.Writer
	accessible bool
}

func (u *initUI) ask(ctx context.Context, g initGroup, vars map[string]string, asked map[string]bool) error {
	answers := map[string]*string{}
	yes := map[string]*bool{}
	var fields []huh.Field
	for _, f := range g.fields {
		if asked[f.key] || (f.when != nil && !f.when(vars)) {
			continue
		}
		if f.yesNo {
			b := vars[f.key] == "true"
			yes[f.key] = &b
			fields = append(fields, huh.NewConfirm().Title(f.title).Description(f.desc).Value(&b))
			continue
		}
		s := vars[f.key]
		answers[f.key] = &s
		in := huh.NewInput().Title(f.title).Description(f.desc).Value(&s)
		if f.secret {
			in = in.EchoMode(huh.EchoModePassword)
		}
		if !f.optional {
			in = in.Validate(func(s string) error {
				if strings.TrimSpace(s) == "" {
					return errors.New("an answer is needed")
				}
				return nil
			})
		}
		fields = append(fields, in)
	}
	if len(fields) == 0 {
		return nil
	}
	fmt.Fprintf(u.out, "\n%s\n", g.name)
	form := huh.NewForm(huh.NewGroup(fields...)).WithInput(u.in).WithOutput(u.out).WithAccessible(u.accessible).WithShowHelp(false)
	if err := form.RunWithContext(ctx); err != nil {
		if errors.Is(err, huh.ErrUserAborted) {
			return errors.New("init: aborted, nothing written")
		}
		return fmt.Errorf("ask %s settings: %w", g.name, err)
	}
	for k, s := range answers {
		vars[k] = strings.TrimSpace(*s)
	}
	for k, b := range yes {
		vars[k] = strconv.FormatBool(*b)
	}
	return nil
}

// The live checks: each builds the client tqflow run would, from the
// answers, and asks the system the least that proves them.

func checkJobs(_ context.Context, v map[string]string) error {
	jobs := splitList(v["JOBS"])
	if len(jobs) == 0 {
		return errors.New("JOBS: name at least one of ctr, misp, et")
	}
	for _, j := range jobs {
		if !slices.Contains([]string{"ctr", "misp", "et"}, j) {
			return fmt.Errorf("JOBS: unknown job %q (want ctr, misp or et)", j)
		}
	}
	return nil
}

func threatqClient(v map[string]string) (*threatq.Client, error) {
	var c struct {
		TQ threatq.Config `envPrefix:"THREATQ_"`
	}
	if err := config.Parse(&c, v); err != nil {
		return nil, err
	}
	return threatq.New(c.TQ)
}

func checkThreatQ(ctx context.Context, v map[string]string) error {
	tq, err := threatqClient(v)
	if err != nil {
		return err
	}
	// Any authenticated call proves the token: the statuses are small.
	if _, err := tq.IndicatorStatuses(ctx); err != nil {
		return explain(err)
	}
	return nil
}

func checkCTR(ctx context.Context, v map[string]string) error {
	var errs []error
	tq, err := threatqClient(v)
	if err != nil {
		return err
	}
	if _, err := tq.SavedSearch(ctx, v["CTR_SAVED_SEARCH"]); err != nil {
		errs = append(errs, fmt.Errorf("CTR_SAVED_SEARCH %q: %w", v["CTR_SAVED_SEARCH"], explain(err)))
	}
	if _, err := tq.IndicatorStatusID(ctx, v["CTR_STATUS"]); err != nil {
		errs = append(errs, fmt.Errorf("CTR_STATUS %q: %w", v["CTR_STATUS"], explain(err)))
	}
	var c struct {
		CTR ctr.Config `envPrefix:"CTR_"`
	}
	if err := config.Parse(&c, v); err != nil {
		return errors.Join(append(errs, err)...)
	}
	cl, err := ctr.New(c.CTR)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	// One observable, answered or not, proves the token (the token
	// request comes first).
	if _, err := cl.Observe(ctx, []ctr.Observable{{Type: "ip", Value: "192.0.2.1"}}); err != nil {
		errs = append(errs, explain(err))
	}
	return errors.Join(errs...)
}

func checkMISP(ctx context.Context, v map[string]string) error {
	var c struct {
		MISP misp.Config `envPrefix:"MISP_"`
	}
	if err := config.Parse(&c, v); err != nil {
		return err
	}
	if t, err := strconv.ParseFloat(v["MISP_SCORE_THRESHOLD"], 64); err != nil || t < 0 || t > 10 {
		return fmt.Errorf("MISP_SCORE_THRESHOLD %q: want 0 to 10", v["MISP_SCORE_THRESHOLD"])
	}
	cl, err := misp.New(c.MISP)
	if err != nil {
		return err
	}
	if _, err := cl.ServerVersion(ctx); err != nil {
		return explain(err)
	}
	return nil
}

func checkET(ctx context.Context, v map[string]string) error {
	var c struct {
		ET et.Config `envPrefix:"ET_"`
	}
	if err := config.Parse(&c, v); err != nil {
		return err
	}
	cl, err := et.New(c.ET)
	if err != nil {
		return err
	}
	var errs []error
	for _, src := range cl.Sources() {
		if _, err := cl.Check(ctx, src, et.State{}); err != nil {
			errs = append(errs, explain(err))
		}
	}
	tq, err := threatqClient(v)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	statuses := []string{"ET_STANDARD_STATUS"}
	if v["ET_INCLUDE_NONSTANDARD"] == "true" {
		statuses = append(statuses, "ET_NONSTANDARD_STATUS")
	}
	for _, k := range statuses {
		if _, err := tq.SignatureStatusID(ctx, v[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", k, v[k], explain(err)))
		}
	}
	return errors.Join(errs...)
}

// explain adds what an operator can do about the common refusals.
func explain(err error) error {
	switch {
	case errors.Is(err, threatq.ErrCredentials):
		return fmt.Errorf("%w (check the e-mail address, password and client ID)", err)
	case errors.Is(err, ctr.ErrCredentials):
		return fmt.Errorf("%w (check the CTR client ID and password, and the region)", err)
	case errors.Is(err, misp.ErrAuth):
		return fmt.Errorf("%w (check the MISP authorization key)", err)
	}
	return err
}

// writeInitFile writes vars as an env file that config.ReadEnvFile reads
// back, replacing path atomically. A new file is mode 0600; an existing
// one keeps its mode and owner when no one else may read it (the
// packages' /etc/tqflow/tqflow.env is 0640 root:tqflow). With secretsDir,
// each secret goes to a file of its own there, and X_FILE into the env
// file.
func writeInitFile(path, secretsDir string, vars map[string]string) error {
	secret := map[string]bool{}
	known := map[string]bool{}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# tqflow settings, written by tqflow init on %s.\n# tqflow run -h lists every variable and its default.\n", time.Now().UTC().Format(time.DateOnly))
	for _, g := range initGroups() {
		if g.job != "" && !slices.Contains(splitList(vars["JOBS"]), g.job) {
			continue
		}
		fmt.Fprintf(&b, "\n# %s\n", g.name)
		for _, f := range g.fields {
			known[f.key] = true
			secret[f.key] = f.secret
			val, ok := vars[f.key]
			if !ok || (val == "" && f.optional) || (f.when != nil && !f.when(vars)) {
				continue
			}
			if f.secret && secretsDir != "" && val != "" {
				p, err := writeSecret(secretsDir, f.key, val)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "%s_FILE=%s\n", f.key, strconv.Quote(p))
				continue
			}
			fmt.Fprintf(&b, "%s=%s\n", f.key, strconv.Quote(val))
		}
	}
	var extra []string
	for k := range vars {
		if !known[k] && initDefaults[k] == "" {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		b.WriteString("\n# other settings\n")
		for _, k := range extra {
			fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(vars[k]))
		}
	}
	mode, uid, gid := os.FileMode(0o600), -1, -1
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o007 == 0 {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tqflow.env.*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if uid >= 0 {
		// Only root can give the file away; anyone else keeps it.
		_ = tmp.Chown(uid, gid)
	}
	if _, err := tmp.Write(b.Bytes()); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeSecret(dir, key, val string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write secret %s: %w", key, err)
	}
	p, err := filepath.Abs(filepath.Join(dir, strings.ToLower(key)))
	if err != nil {
		return "", fmt.Errorf("write secret %s: %w", key, err)
	}
	if err := os.WriteFile(p, []byte(val+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write secret %s: %w", key, err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		return "", fmt.Errorf("write secret %s: %w", key, err)
	}
	return p, nil
}
