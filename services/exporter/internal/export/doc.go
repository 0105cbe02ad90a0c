// Package export is the MISP exporter's logic: take indicator.v1 messages
// in batches, map each ThreatQ type to a MISP type and category, normalise
// the value as MISP does, and add it to the day's event, one event per
// chunk of at most MaxPerEvent (25,000) attributes.
//
// # Which day
//
// An indicator belongs to the day of its updated_at in the configured time
// zone (UTC by default); [DayFromPublished] uses the time the fetcher
// published the message instead. Both are fixed properties of the message,
// so a redelivery, a restart or a replay of the same message always lands
// in the same day, and an indicator updated after midnight starts the next
// day's event.
//
// # State shared by replicas (bucket tqflow_misp_days)
//
//   - "<instance>.<day>" holds the day: its chunks, how many attribute slots
//     each has handed out, and whether its event exists. It changes only by
//     compare-and-set (Update with the revision read, Create when absent),
//     retried on conflict, so two replicas never hand out the same slot and
//     never open the same chunk twice.
//   - "<instance>.<day>.v.<hash>" is the claim of one (type, normalised
//     value) on that day, created with Create (first claimant wins) and
//     holding the chunk it went to. A value already claimed is sent again
//     to the same chunk (MISP answers "already exists": success), never to a
//     later one.
//
// Slots are reserved (the day's count raised) before the claims are written
// and before anything is sent: a crash can leave reserved slots unused, so a
// chunk may end below MaxPerEvent, but never above it. Reservation and
// claim writing run under a context detached from shutdown, so a stopping
// exporter does not leave slots reserved but unclaimed.
//
// Event and attribute UUIDs are deterministic ([misp.EventUUID] of the
// instance, day and chunk; [misp.AttributeUUID] of the event, type and
// value), so a retried call or a replayed message never stores anything
// twice.
package export
