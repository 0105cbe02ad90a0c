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
//   - any other error: NakWithDelay, with an exponential backoff by delivery
//     count, or the server's Retry-After where the error carries one; the
//     runner also holds back its other workers until then, so that a rate
//     limit is not hammered. On the consumer's last allowed delivery
//     (MaxDeliver) the message is dead-lettered instead.
//   - while a handler runs, the runner sends InProgress at a third of AckWait,
//     so long work is not redelivered to another replica.
//
// On shutdown (the context given to [Bus.Run] ends) the runner stops pulling,
// lets the handlers finish what they hold within [RunOptions.DrainTimeout],
// settles their messages, and returns.
package bus
