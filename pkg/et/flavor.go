package et

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultFlavor is the flavour fetched when none is configured: ET's fork
// for Suricata 7.0.3 and later, which ET serves to every suricata-update of
// such a Suricata (shared/contracts/et.md, corrections 2). The older
// suricata-5.0 fork is the one ET keeps for Suricata 5, 6 and 7.0.0-7.0.2.
const DefaultFlavor = "suricata-7.0.3"

var (
	// suricataFlavor: "suricata" (the 1.3-era legacy directory),
	// "suricata-<major.minor>" (a fork directory such as suricata-5.0 or
	// suricata-8.0) or "suricata-<major.minor.patch>", which is what
	// suricata-update asks for ("%d.%d.%d" of the local Suricata) and ET
	// maps onto a fork.
	suricataFlavor = regexp.MustCompile(`^suricata(-[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,3})?)?$`)
	// snortFlavor: snort-edge, or snort-<a.b.c> with an optional fourth
	// component, which pulledpork drops (a Snort binary reports 2.9.7.0;
	// pulledpork asks for snort-2.9.7/).
	snortFlavor = regexp.MustCompile(`^snort-(edge|[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(\.[0-9]{1,3})?)$`)
)

// validFlavor reports whether f is a flavour this package can ask ET for.
func validFlavor(f string) bool {
	return suricataFlavor.MatchString(f) || snortFlavor.MatchString(f)
}

// flavorHelp says which flavours are accepted, for configuration errors.
const flavorHelp = "want suricata-<major.minor.patch> of your Suricata (as suricata-update sends it; " +
	"ET maps 7.0.3 and later to suricata-7.0.3, 5.x, 6.x and 7.0.0-7.0.2 to suricata-5.0), a fork " +
	"such as suricata-7.0.3, suricata-5.0 or suricata-8.0, the legacy suricata, or " +
	"snort-<version> of your Snort (snort-2.9.7.0 asks for snort-2.9.7, as pulledpork does), " +
	"snort-2.9.0 or snort-edge"

// RequestFlavor returns the flavour directory a configured flavour asks ET
// for, as the tool that serves that engine would ask: a Suricata flavour
// as given (suricata-update sends the full version and ET maps it onto its
// fork on the server side); a Snort version with four components loses
// the fourth, as pulledpork's s/(?<=\d\.\d\.\d)\.\d// does (snort-2.9.7.0
// gives snort-2.9.7); anything else as given.
//
// pulledpork's expression only matches one-digit components, so for a
// version such as 2.9.16.1 it builds no flavour path at all (its newer
// release) or keeps all four (its older one); RequestFlavor drops the
// fourth component there too, which is what pulledpork means to do.
func RequestFlavor(flavor string) string {
	v, ok := strings.CutPrefix(flavor, "snort-")
	if !ok {
		return flavor
	}
	parts := strings.Split(v, ".")
	if len(parts) != 4 {
		return flavor
	}
	return "snort-" + strings.Join(parts[:3], ".")
}

// flavorAdvice says what to try after ET answered 404 for flavor.
func flavorAdvice(flavor string) string {
	if strings.HasPrefix(flavor, "snort") {
		return "ET publishes its Snort 2.9 rules as snort-2.9.0 and its newest Snort rules as snort-edge; try ET_FLAVOR=snort-2.9.0"
	}
	return fmt.Sprintf("try ET_FLAVOR=%s (Suricata 7.0.3 and later), suricata-5.0 (Suricata 5, 6, 7.0.0-7.0.2) or suricata-8.0", DefaultFlavor)
}
