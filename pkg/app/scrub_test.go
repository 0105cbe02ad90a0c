package app_test

import (
	"strings"
	"testing"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/ctr"
	"github.com/tqflow/tqflow/pkg/misp"
	"github.com/tqflow/tqflow/pkg/threatq"
)

// TestClientsScrubEveryProcessSecret: each client's Config.Scrub holds the
// secrets of every configuration parsed with it, so an error a MISP proxy
// gives with the ThreatQ secret in it never carries that secret.
func TestClientsScrubEveryProcessSecret(t *testing.T) {
	t.Parallel()
	const tqSecret, ctrPassword, mispKey = "tq-secret-5a7c9e", "ctr-pass-1b3d5f", "misp-key-0123456789abcdef"
	var got []string
	logs := runParse(t, []string{
		"THREATQ_URL=https://tq.example", "THREATQ_CLIENT_ID=id-1234", "THREATQ_CLIENT_SECRET=" + tqSecret,
		"CTR_CLIENT_ID=client-1", "CTR_CLIENT_PASSWORD=" + ctrPassword,
		"MISP_URL=https://misp.example", "MISP_KEY=" + mispKey,
	}, func(env *app.Env) error {
		var cfg struct {
			ThreatQ threatq.Config `envPrefix:"THREATQ_"`
			CTR     ctr.Config     `envPrefix:"CTR_"`
			MISP    misp.Config    `envPrefix:"MISP_"`
		}
		if err := env.Parse(&cfg); err != nil {
			return err
		}
		echo := "echo: " + tqSecret + " " + ctrPassword + " " + mispKey
		got = []string{cfg.ThreatQ.Scrub.String(echo), cfg.CTR.Scrub.String(echo), cfg.MISP.Scrub.String(echo)}
		return nil
	})
	if len(got) != 3 {
		t.Fatalf("the command did not run:\n%s", logs)
	}
	for i, s := range got {
		for _, secret := range []string{tqSecret, ctrPassword, mispKey} {
			if strings.Contains(s, secret) {
				t.Errorf("client %d's scrubber leaves %q in %q", i, secret, s)
			}
		}
	}
}
