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
//     value) on that day, the value folded as MISP's duplicate rule sees it
//     (utf8mb3_unicode_ci: case and accents ignored, [misp.FoldKey]),
//     created with Create (first claimant wins) and holding the chunk it
//     went to and which exact value it was (a hash). A value sharing the
//     claim in another form is "merged by MISP": not sent, counted as
//     Merged. A value already claimed is sent again
//     to the same chunk (MISP answers "already exists": success), never to a
//     later one. A claim expires (a NATS per-key TTL, [Settings].ClaimTTL,
//     30 days by default); see below.
//
// Day keys never expire. An expired day key would start the day's slot
// count again at zero while the day's events still hold their attributes:
// a value arriving after that would be given a slot in chunk 1 (or the
// last chunk the new count reached), which may already hold 25,000.
//
// Slots are reserved (the day's count raised) before the claims are written
// and before anything is sent: a crash can leave reserved slots unused, so a
// chunk may end below MaxPerEvent, but never above it. Reservation and
// claim writing run under a context detached from shutdown, so a stopping
// exporter does not leave slots reserved but unclaimed.
//
// # Expired claims
//
// About 60,000 claims a day per instance would otherwise pile up for ever
// in the bucket and in the server's subject index. A claim only matters
// while values of its day can still arrive: on the day itself, in its
// redeliveries, and in a replay (tqflow replay, or a historical fetch) of
// that day. Once a claim has expired, a value of that day seen again is
// handled as new: it is given a fresh slot from the day's count, which
// the day key has kept, so it goes to the day's last chunk, or a new one
// when that is full. So a replay of a day older than the claim lifetime
//
//   - never puts more than MaxPerEvent attributes in an event: the count is
//     never reset, it only goes on rising;
//   - may put a value into a later chunk than the one that already holds
//     it, so one value can sit in two events of the same old day (MISP
//     stores it once per event; within the last chunk itself the
//     attribute UUID makes it "already exists", costing only a slot).
//
// That is acceptable: the attribute is correct wherever it lands, a
// search finds it either way, a duplicate across two events of an old day
// at worst correlates them, and replays that old are rare and deliberate. The default
// lifetime equals the streams' default MaxAge (NATS_STREAM_MAX_AGE, how
// far back tqflow replay reaches), so it is mostly a historical fetch
// (--historical) that meets days whose claims are gone. Claims written
// before claims expired carry no TTL and stay until purged.
//
// Event and attribute UUIDs are deterministic ([misp.EventUUID] of the
// seed — the MISP URL, the ThreatQ URL and the instance, [misp.Seed] — day
// and chunk; [misp.AttributeUUID] of the event, type and value), so a
// retried call or a replayed message never stores anything twice in one
// event, and two deployments never share an event.
//
// # Events found in MISP
//
// MISP hands back whatever event holds a UUID, whoever owns it. An event
// under one of our UUIDs is used only when it is ours (created by the API
// user's organisation, with the chunk's info or one of our tags);
// otherwise the chunk moves to the next UUID generation and the event is
// left alone. When a day's state does not know its events (a new day, or
// the NATS state was lost), the day's chunks are looked for in MISP before
// any slot is given: an event of ours found there is adopted, its
// attribute_count raising the chunk's count, and new values of the day are
// first looked up in the adopted events (attributes/restSearch) and
// claimed where MISP holds them. So a rerun after a state loss adds
// nothing and no event passes MaxPerEvent.
//
// # Time-outs
//
// After a 504, a 500 or a client time-out on /attributes/add the messages
// go back to the runner with a delay of [Settings].ResendAfter (MISP's
// max_execution_time): PHP goes on saving after a proxy gave up, and a
// resend racing it would meet the uuid unique key (a 500 that loses the
// rest of the batch). Later calls are halved, growing back as calls go
// through.
package export
