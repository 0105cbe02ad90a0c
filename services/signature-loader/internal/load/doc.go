// Package load is the signature-loader's logic: it turns one ruleset.v1
// message (one rules file of an ET ruleset kept in the Object Store) into
// write.v1 signature messages for the writer, incrementally.
//
// Every rule of the file is parsed with pkg/rules; lines that are not rules
// are counted and logged with their file and line, and the rest of the file
// still loads. Enabled rules ("standard") get the standard status; rules ET
// ships commented out ("non-standard") get the non-standard status, and
// only when non-standard rules are included (shared/contracts/et.md §2.4).
// Even when they are not, a rule written as enabled that ET has since
// disabled is written once more, with the non-standard status: ET withdraws
// rules for false positives or breakage, and a signature this loader wrote
// must not stay at the standard status for ever.
//
// The loader remembers, per instance, the rev, status, source and
// disabledness last written for every sid, in the ET state bucket, sharded
// by sid (<instance>.sids.<sid/1000>); entries saved before disabledness
// was recorded are judged by their status. A rule is written only when it
// is new, its rev went up, or its status changed at the same rev. A rule whose rev is
// lower than the one already written (ET Open behind ET Pro, which carries
// the same sids) is left alone: the higher rev wins, as in suricata-update.
// Retiring: a new rev of a rule is new rule text, so ThreatQ makes it a
// new signature; the previous revision's signature is written once more
// with the retired status (ET_RETIRED_STATUS), whichever source wrote it,
// and so is the signature of a rule that left its file. For this the
// loader also keeps, per rules file of a source (<instance>.files.<hash>),
// the object its last version came from and the rev of each rule in it:
// the rules that left are those
// of the old list missing from the new, and their text (the signature's
// value, what ThreatQ finds it by) is read back from that object, so no
// signature is read back from ThreatQ and the sid state stays small. The
// sid state names the file each rule was written from, so a rev bump by
// ET Pro retires ET Open's older revision from ET Open's file. A
// rule that went to another file at the same rev is retired by the first
// and written again by the second only if its status differs. Status
// changes of existing signatures carry the status last written
// (last_status), and the writer PUTs them: consume leaves an existing
// signature's status alone.
//
// The state moves only after the stream has stored every write, by
// compare-and-set, so that a crash repeats writes (deduplicated by their
// content-derived message IDs, and idempotent in the writer) and never
// loses one.
package load
