package ctr

import "strings"

// Observable is one thing CTR is asked about: a CTIM observable type (ip,
// domain, sha256, …) and its value.
type Observable struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// threatqTypes maps lower-cased ThreatQ indicator type names to CTIM
// observable types (contract §5). ThreatQ types absent here (CIDR Block,
// ASN, SHA-384, SHA-512, Fuzzy Hash, String, …) have no CTR counterpart.
var threatqTypes = map[string]string{
	"ip address":    "ip",
	"ipv4 address":  "ip",
	"ipv6 address":  "ipv6",
	"fqdn":          "domain",
	"domain":        "domain",
	"url":           "url",
	"sha-256":       "sha256",
	"sha256":        "sha256",
	"sha-1":         "sha1",
	"sha1":          "sha1",
	"md5":           "md5",
	"email address": "email",
	"email subject": "email_subject",
	"filename":      "file_name",
	"file path":     "file_path",
	"mutex":         "mutex",
	"registry key":  "registry_key",
	"user-agent":    "user_agent",
	"user agent":    "user_agent",
	"mac address":   "mac_address",
	"username":      "user",
	"hostname":      "hostname",
}

// TypeFor returns the CTR observable type of a ThreatQ indicator type
// (case-insensitive, e.g. "IP Address" → "ip", "FQDN" → "domain",
// "SHA-256" → "sha256"), and false for a type CTR cannot enrich.
func TypeFor(threatqType string) (string, bool) {
	t, ok := threatqTypes[strings.ToLower(strings.TrimSpace(threatqType))]
	return t, ok
}

// observableTypes is the IROH Observable type enum (Swagger 1.0.107), which
// equals CTIM's observable-type-identifier: 63 values. A batch holding any
// other type is refused whole with a 400.
var observableTypes = map[string]bool{
	"acudid": true, "amp_computer_guid": true, "certificate_common_name": true,
	"certificate_issuer": true, "certificate_serial": true, "cisco_cm_id": true,
	"cisco_mid": true, "cisco_uc_id": true, "cortex_agent_id": true,
	"crowdstrike_id": true, "cvm_id": true, "cybereason_id": true,
	"darktrace_id": true, "device": true, "domain": true, "email": true,
	"email_messageid": true, "email_subject": true, "file_name": true,
	"file_path": true, "google_chromebook_id": true, "google_cloud_id": true,
	"hostname": true, "imei": true, "imsi": true, "intune_id": true, "ip": true,
	"ipv6": true, "jamf_management_id": true, "mac_address": true, "md5": true,
	"meraki_network_id": true, "meraki_node_sn": true, "meraki_org_id": true,
	"ms_machine_id": true, "mutex": true, "ngfw_id": true, "ngfw_name": true,
	"odns_identity": true, "odns_identity_label": true, "orbital_node_id": true,
	"pki_serial": true, "process_args": true, "process_hash": true,
	"process_name": true, "process_path": true, "process_uid": true,
	"process_username": true, "processor_id": true, "registry_key": true,
	"registry_name": true, "registry_path": true, "s1_agent_id": true,
	"secure_access_id": true, "serial_number": true, "service_now_id": true,
	"sha1": true, "sha256": true, "swc_device_id": true, "trend_micro_id": true,
	"url": true, "user": true, "user_agent": true,
}

// ValidType reports whether t is one of the 63 observable types CTR
// accepts (exact, lower-case names).
func ValidType(t string) bool { return observableTypes[t] }

// caseInsensitive lists the observable types whose values are matched
// without regard to case: hex digests, DNS names, e-mail addresses, IPv6
// and MAC addresses. Modules may echo such values in another case than
// the one sent.
var caseInsensitive = map[string]bool{
	"md5": true, "sha1": true, "sha256": true, "process_hash": true,
	"domain": true, "hostname": true, "email": true, "ipv6": true,
	"mac_address": true,
}

// key is how observables are compared: the lower-cased type and the value,
// lower-cased for case-insensitive types.
type key struct{ typ, value string }

func keyOf(o Observable) key {
	t := strings.ToLower(strings.TrimSpace(o.Type))
	v := strings.TrimSpace(o.Value)
	if caseInsensitive[t] {
		v = strings.ToLower(v)
	}
	return key{t, v}
}
