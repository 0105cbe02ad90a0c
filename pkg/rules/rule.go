package rules

// Rule is one parsed Snort/Suricata rule. Every string is a substring of the
// rule text except Msg, which is unescaped.
type Rule struct {
	// Enabled is false for a rule commented out with leading '#'.
	Enabled bool
	// Action is the first header field: alert, drop, pass, reject, ...
	Action string
	// Proto is the protocol field (tcp, udp, http, dns, ...); empty for a
	// one-word header such as a Snort decoder rule "alert (...)".
	Proto string
	// Src is the source address field, e.g. "$HOME_NET" or "[1.2.3.4,5.6.7.8]".
	Src string
	// SrcPort is the source port field.
	SrcPort string
	// Direction is the direction field as written: "->", "<>" (or
	// Suricata 8's "=>"); it is not validated, as in suricata-update.
	Direction string
	// Dst is the destination address field.
	Dst string
	// DstPort is the destination port field.
	DstPort string
	// Msg is the msg option without its surrounding quotes, unescaped as
	// Suricata does it (src/detect-msg.c): the backslash before any
	// character is dropped, so "\w" reads "w" and "\\" reads "\". It is the
	// text Suricata shows in an alert. The raw value, quotes and escapes
	// kept, is the msg entry of Options (see [Rule.RawMsg]).
	Msg string
	// SID is the signature id; it is never 0 in a parsed rule.
	SID int
	// GID is the generator id, 1 when the rule has no gid option.
	GID int
	// Rev is the revision, 0 when the rule has no rev option.
	Rev int
	// Classtype is the classtype option, empty when absent.
	Classtype string
	// Priority is the priority option; when the rule has none, the priority
	// of its classtype in classification.config when the reader was given
	// one; else 0.
	Priority int
	// References holds the reference options in order.
	References []Reference
	// Metadata holds the metadata options, split on commas into key/value
	// pairs, in order; the metadata option may repeat.
	Metadata []KV
	// Flowbits holds the values of the flowbits options in order, e.g.
	// "set,ET.foo" or "noalert".
	Flowbits []string
	// NoAlert is true for a rule with flowbits:noalert or a noalert option.
	NoAlert bool
	// Options holds every option in order, raw (msg keeps its quotes and
	// escapes).
	Options []Option
	// Raw is the rule text without its leading '#' and white space.
	Raw string
	// File is the name of the file the rule came from, as given to the
	// reader; empty for [Parse].
	File string
	// Line is the 1-based line number of the rule in File (its first line
	// when continued with backslashes); 0 for [Parse].
	Line int
}

// Reference is one reference option, "reference:type,value".
type Reference struct {
	// Type is the reference system, e.g. "url", "cve", "md5".
	Type string
	// Value is what follows the first comma.
	Value string
}

// KV is one metadata entry, "key value".
type KV struct {
	// Key is the entry up to its first white space.
	Key string
	// Value is the rest of the entry, trimmed; it may be empty.
	Value string
}

// Option is one rule option as written, split on its first ':'.
type Option struct {
	// Name is the option keyword, e.g. "content" or "noalert".
	Name string
	// Value is the text after the first ':', trimmed; empty for an option
	// without a value.
	Value string
}

// RawMsg returns the msg option as written in the rule, with its quotes and
// escapes but without its surrounding quotes (what suricata-update reports
// as msg), or "" when the rule has no msg. Of several msg options it takes
// the last, as Msg does.
func (r *Rule) RawMsg() string {
	v := ""
	for _, o := range r.Options {
		if o.Name == "msg" {
			v = o.Value
			if len(v) >= 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1:max(1, len(v)-1)]
			}
		}
	}
	return v
}

// MetadataValues returns the values of the metadata entries with the given key, in
// order, or nil.
func (r *Rule) MetadataValues(key string) []string {
	var vs []string
	for _, kv := range r.Metadata {
		if kv.Key == key {
			vs = append(vs, kv.Value)
		}
	}
	return vs
}
