package misp

import (
	"crypto/sha1" //nolint:gosec // UUIDv5 is defined on SHA-1 (RFC 9562 §5.5); not used for security.
	"encoding/hex"
	"strconv"
	"strings"
)

// Namespace is the UUIDv5 namespace of tqflow's MISP event UUIDs. It is
// fixed forever: changing it would make every exporter create a second set
// of day events.
const Namespace = "1580d064-667b-4d2e-a059-edf14b478e3d"

// EventUUID returns the deterministic UUID of chunk n (1, 2, …) of a day's
// export: UUIDv5(Namespace, "threatq-misp|<seed>|<day>|<chunk>"). seed must
// say what makes an export this export, so that two deployments never
// share an event: the exporter uses "<MISP base URL>|<ThreatQ URL>|<instance>"
// (see [Seed]) or an operator's override; trailing slashes are ignored. day
// is YYYY-MM-DD. To move past a blocklisted or foreign UUID, put a
// generation suffix in seed (e.g. "<seed>|g2").
func EventUUID(instance, day string, chunk int) string {
	name := "threatq-misp|" + strings.TrimRight(instance, "/") + "|" + day + "|" + strconv.Itoa(chunk)
	return uuid5(parseUUID(Namespace), name)
}

// Seed returns the event UUID seed of an export from a ThreatQ into a MISP
// under an instance name: both URLs lower-cased, without trailing slashes,
// and the instance, joined with "|".
func Seed(mispURL, threatqURL, instance string) string {
	clean := func(u string) string { return strings.TrimRight(strings.ToLower(strings.TrimSpace(u)), "/") }
	return clean(mispURL) + "|" + clean(threatqURL) + "|" + instance
}

// AttributeUUID returns the deterministic UUID of an attribute in an event:
// UUIDv5(eventUUID, "<type>|<normalizedValue>"). Pass the value as
// [Normalize] returns it, so that a retry or a re-export of the same
// indicator gives the same UUID and MISP answers "not unique" instead of
// storing it twice. An eventUUID that is not a UUID is used as part of the
// name under Namespace instead, so the result is still deterministic.
func AttributeUUID(eventUUID, mispType, normalizedValue string) string {
	ns, ok := parseUUIDOK(eventUUID)
	if !ok {
		return uuid5(parseUUID(Namespace), eventUUID+"|"+mispType+"|"+normalizedValue)
	}
	return uuid5(ns, mispType+"|"+normalizedValue)
}

// ValidUUID reports whether s is a UUID in its canonical 8-4-4-4-12 hex
// form (either case).
func ValidUUID(s string) bool {
	_, ok := parseUUIDOK(s)
	return ok
}

func parseUUID(s string) [16]byte {
	u, _ := parseUUIDOK(s)
	return u
}

func parseUUIDOK(s string) ([16]byte, bool) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, false
	}
	return u, true
}

// uuid5 is RFC 9562 §5.5: SHA-1 of namespace and name, version 5, variant
// 10.
func uuid5(ns [16]byte, name string) string {
	h := sha1.New() //nolint:gosec // See the import.
	h.Write(ns[:])
	h.Write([]byte(name))
	sum := h.Sum(nil)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
