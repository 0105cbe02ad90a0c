// Package rules is a tolerant parser for Snort and Suricata rules, modelled
// on what suricata-update's parser (the Python module suricata.update.rule)
// accepts, so that tqflow can load Emerging Threats (ET) rulesets as
// signatures.
//
// It reads the rule envelope, not the detection logic: the header (action,
// protocol, addresses, ports, direction), the options in order, and the
// fields a loader needs (gid, sid, rev, msg, classtype, priority, references,
// metadata, flowbits, noalert). A rule commented out with any number of
// leading '#' parses with Enabled set to false.
//
// Grammar, following suricata-update:
//
//   - A rule is "header (options)": the header holds no parenthesis, the
//     options run to the last ')' of the line, and nothing may follow it.
//   - Options end at a ';' that is not escaped by a backslash. Quotes are not
//     tracked: real ET rules carry unescaped '"' inside pcre.
//   - Each option is split on its first ':' into name and value; an option
//     may have no value (noalert;).
//   - gid, sid and rev are integers (gid defaults to 1, rev to 0); a rule
//     without a non-zero sid is an error.
//   - A line ending in a backslash continues on the next line.
//
// Where suricata-update rejects a line (no sid, an option without its ';', a
// bad number, an unknown action, a malformed header), the parser reports an
// error for that line and goes on with the next one. A comment that is not a
// rule gives [ErrNotRule] from [Parse] and is skipped silently by the file
// readers. The deliberate differences from suricata-update are listed on
// [Parse].
//
// [Parse] is safe for concurrent use; a [Parser] may be shared by goroutines
// as long as its fields are not changed.
package rules
