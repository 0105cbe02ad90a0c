package ctrsim

import (
	"strings"
	"time"
)

// Observable is one observable: a CTIM type and a value.
type Observable struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// ModuleContext is what one module knows about one observable: the
// module's identity, the disposition of its verdict and, optionally, a
// judgement and a sighting. Several contexts of one module for one
// observable give several judgements (as AbuseIPDB gives one per report)
// and one verdict, the CTIM way: the highest priority wins, ties going to
// Clean, Malicious, Suspicious, Common, Unknown in that order.
type ModuleContext struct {
	// Module is the instance's display name, e.g. "Talos Intelligence".
	Module string
	// InstanceID is the module_instance_id; derived from Module when empty.
	// Contexts with the same InstanceID belong to the same module.
	InstanceID string
	// TypeID is the module_type_id; derived from Module when empty.
	TypeID string
	// Handles lists the observable types the module answers for; empty
	// means all. A context of another type is kept but never answered, as
	// a module silently returns nothing for types it does not support.
	Handles []string
	// Disposition is the disposition of the module's verdict, 1 Clean,
	// 2 Malicious, 3 Suspicious, 4 Common, 5 Unknown. Zero makes a
	// sightings-only context (the user's own environment, sx-00
	// query_tr.rst): no verdict and no judgement, only Sighting.
	Disposition int
	// Judgement, when not nil, adds a judgement (observe only).
	Judgement *Judgement
	// Sighting, when not nil, adds a sighting (observe only).
	Sighting *Sighting
}

// Judgement is the judgement part of a [ModuleContext].
type Judgement struct {
	// Confidence is Info, Low, Medium, High, None or Unknown.
	Confidence string
	// Severity is Info, Low, Medium, High, Critical, None or Unknown.
	Severity string
	// Priority is 0..100: humans 100, curated lists 95, automated <= 90.
	Priority int
	// Disposition, when not zero, is the judgement's own disposition,
	// which may disagree with the verdict's (ModuleContext.Disposition), as
	// the AbuseIPDB relay's verdict says Suspicious while its judgements
	// say Malicious (ctr.md, corrections 5).
	Disposition int
	// Reason, Source and SourceURI are the judgement's fields of those
	// names; empty ones are left out.
	Reason    string
	Source    string
	SourceURI string
	// ValidFrom and ValidUntil bound the judgement and the verdict it
	// drives. Zero ValidFrom means when the context was added; zero
	// ValidUntil means 30 days later.
	ValidFrom  time.Time
	ValidUntil time.Time
	// Indicator, when set, is the title of a CTIM indicator the judgement
	// is linked to (a relationship "element-of"), as Global Threat
	// Intelligence answers: its judgements carry no reason and the
	// readable text is the indicator's title (ctr.md, corrections 7).
	Indicator string
}

// Sighting is the sighting part of a [ModuleContext].
type Sighting struct {
	// Description, Source and SourceURI are the sighting's fields.
	Description string
	Source      string
	SourceURI   string
	// Origin, when set, adds a relation whose origin it is, as relay
	// modules do ("AbuseIPDB Enrichment Module").
	Origin string
}

// observableTypes is the IROH Observable type enum of Swagger 1.0.107,
// identical to CTIM's observable-type-identifier (63 values; see
// shared/data/ctr/ctim_vocabularies.derived.json).
var observableTypes = func() map[string]bool {
	m := make(map[string]bool)
	for _, t := range strings.Fields(`acudid amp_computer_guid certificate_common_name
		certificate_issuer certificate_serial cisco_cm_id cisco_mid cisco_uc_id
		cortex_agent_id crowdstrike_id cvm_id cybereason_id darktrace_id device
		domain email email_messageid email_subject file_name file_path
		google_chromebook_id google_cloud_id hostname imei imsi intune_id ip ipv6
		jamf_management_id mac_address md5 meraki_network_id meraki_node_sn
		meraki_org_id ms_machine_id mutex ngfw_id ngfw_name odns_identity
		odns_identity_label orbital_node_id pki_serial process_args process_hash
		process_name process_path process_uid process_username processor_id
		registry_key registry_name registry_path s1_agent_id secure_access_id
		serial_number service_now_id sha1 sha256 swc_device_id trend_micro_id url
		user user_agent`) {
		m[t] = true
	}
	return m
}()

// ObservableTypes returns the number of observable types the server
// accepts (63).
func ObservableTypes() int { return len(observableTypes) }

// caseInsensitive lists the types whose values the knowledge base matches
// regardless of case.
var caseInsensitive = map[string]bool{
	"md5": true, "sha1": true, "sha256": true, "process_hash": true,
	"domain": true, "hostname": true, "email": true, "ipv6": true,
	"mac_address": true,
}

// okey is how the knowledge base indexes an observable.
type okey struct{ typ, value string }

func keyOf(o Observable) okey {
	if caseInsensitive[o.Type] {
		return okey{o.Type, strings.ToLower(o.Value)}
	}
	return okey{o.Type, o.Value}
}
