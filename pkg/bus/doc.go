// Package bus is tqflow's messaging layer on NATS JetStream: the streams,
// consumers, key-value buckets and object store the pipeline uses, declared
// as code and created idempotently; publishing with deterministic message IDs;
// and a runner that owns every acknowledgement decision.
//
// # Delivery rules
//
// Business code never acknowledges a message. A [Handler] (or
// [BatchHandler]) returns an error, and the runner decides:
//
//   - nil: Ack (DoubleAck where [RunOptions.DoubleAck] is set, so that the
//     runner knows the server recorded it).
//   - a permanent error ([Permanent], or an error whose Transient method
//     reports false, such as a 4xx validation answer or an undecodable
//     message): a [DeadLetter] is published on dlq.<stream>.<consumer>, then
//     the message is terminated with TermWithReason.
//   - an error that asks for a delay (a [RetryAfterer]: a server's
//     Retry-After, [Transient] with a delay, [Pause]): the runner keeps the
//     message (sending InProgress), holds back all its workers until then,
//     so that a rate limit is not hammered, and tries it again in process,
//     spending none of its deliveries. After [RunOptions.MaxRateLimited]
//     such tries it is handled as any other error.
//   - any other error: NakWithDelay, with an exponential backoff by delivery
//     count, or the error's RetryAfter where it asks for one. On the
//     consumer's last allowed delivery (MaxDeliver) the message is
//     dead-lettered instead.
//   - while a handler runs, the runner sends InProgress at a third of AckWait,
//     so long work is not redelivered to another replica.
//   - a message whose last allowed delivery ends without an outcome (its
//     worker crashed or lost its connection) is dead-lettered by a replica
//     that hears the server's max-deliveries advisory.
//
// A dead letter's reason is [ReasonPermanent] or [ReasonMaxDeliver].
// [RunOptions.OnSettle] is told of every settlement, as a [Settlement]
// that carries that reason, so that observers need not work it out again.
//
// On shutdown (the context given to [Bus.Run] ends) the runner stops pulling,
// lets the handlers finish what they hold within [RunOptions.DrainTimeout],
// settles their messages, and returns.
package bus
