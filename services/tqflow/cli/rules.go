package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/rules"
)

// rulesUsage explains tqflow rules; -h prints it.
const rulesUsage = `rules parse PATH

PATH is a rules file, a directory (its *.rules files, in name order) or a
gzipped tarball (.tar.gz, .tgz) such as ET's emerging.rules.tar.gz.

Prints one JSON object per line on stdout for every rule, enabled or
commented out:
  {"file","line","gid","sid","rev","enabled","action","proto","msg","classtype"}
and for every line that is not a valid rule:
  {"file","line","error"}
then a summary on stderr (files, rules, enabled, disabled, errors, elapsed).
Bad lines are reported and do not change the exit status; an unreadable
PATH or a truncated tarball exits 1, after printing what was read.`

// parsedRule is one line of tqflow rules parse output for a rule.
type parsedRule struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	GID       int    `json:"gid"`
	SID       int    `json:"sid"`
	Rev       int    `json:"rev"`
	Enabled   bool   `json:"enabled"`
	Action    string `json:"action"`
	Proto     string `json:"proto"`
	Msg       string `json:"msg"`
	Classtype string `json:"classtype"`
}

// badLine is one line of tqflow rules parse output for a line that is not
// a rule.
type badLine struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// rulesCommand is tqflow rules: tools for Snort/Suricata rules files.
func rulesCommand(stdout, stderr io.Writer) app.Command {
	return app.Command{
		Name:     "rules",
		Summary:  "parse Snort/Suricata rules files as the signature-loader does",
		Usage:    rulesUsage,
		NoCommon: true,
		Flags:    func(*flag.FlagSet) {},
		Run: func(_ context.Context, env *app.Env) error {
			args := env.Args
			if len(args) != 2 || args[0] != "parse" {
				return app.UsageError{Err: errors.New("usage: tqflow rules parse PATH (tqflow rules -h explains)")}
			}
			return parseRules(args[1], stdout, stderr)
		},
	}
}

// parseRules prints the rules of path as JSON lines on stdout and a
// summary on stderr.
func parseRules(path string, stdout, stderr io.Writer) error {
	start := time.Now()
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	var p rules.Parser
	bar := app.NewProgress(stderr, nil, app.ProgressOptions{What: "parse " + path, Unit: "lines", Total: -1})
	st, err := p.Walk(path, func(r *rules.Rule, lerr error) error {
		bar.Add(1)
		if lerr != nil {
			bl := badLine{Error: lerr.Error()}
			var le *rules.LineError
			if errors.As(lerr, &le) {
				bl.File, bl.Line, bl.Error = le.File, le.Line, le.Err.Error()
			}
			return enc.Encode(bl)
		}
		return enc.Encode(parsedRule{
			File: r.File, Line: r.Line, GID: r.GID, SID: r.SID, Rev: r.Rev, Enabled: r.Enabled,
			Action: r.Action, Proto: r.Proto, Msg: r.Msg, Classtype: r.Classtype,
		})
	})
	bar.Done()
	fmt.Fprintf(stderr, "files=%d rules=%d enabled=%d disabled=%d errors=%d elapsed=%s\n",
		st.Files, st.Rules(), st.Enabled, st.Disabled, st.Errors, time.Since(start).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintf(stderr, "tqflow rules parse: %v\n", err)
		return fmt.Errorf("parse rules %s: %w", path, err)
	}
	return nil
}
