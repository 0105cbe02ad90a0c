// Package obs is tqflow's observability: Prometheus metrics on a private
// registry, and the HTTP server every service runs for /metrics, /livez
// and /readyz.
//
// # Metrics
//
// Every metric is in the tqflow namespace and carries a constant service
// label. [Metrics.OnSettle] is the bus runner's settle hook and counts
// messages by consumer and outcome; [Metrics.TimeHandler] and
// [Metrics.TimeBatch] time handler calls; [Metrics.Transport] times the
// calls an API client makes ([Metrics.WrapTransport] is the WrapTransport
// setting of the threatq, ctr, misp and et clients);
// [Metrics.PollConsumers] copies consumer state (pending, ack pending,
// redelivered) from the server every 15 seconds; [Metrics.RunDone] and [Metrics.LoadRuns] keep the time of each
// job instance's last successful run.
//
// [Wire] is the one wiring every process shape uses (pkg/app's Serve for
// the separate services, the pipeline's Instrument for tqflow run): it
// times every handler of every runner on the process's connections, and
// [Wiring.Watch] adds a consumer to readiness and to the polled gauges.
//
// The names, for dashboards and alerts:
//
//	tqflow_messages_settled_total{consumer,outcome}    counter; outcome acked, retried, dead_lettered
//	tqflow_redeliveries_total{consumer}                counter; settlements of a message delivered more than once
//	tqflow_dead_letters_total{consumer,reason}         counter; reason permanent or max_deliver
//	tqflow_handler_duration_seconds{consumer}          histogram; one handler (or batch handler) call
//	tqflow_api_request_duration_seconds{system,code}   histogram; system threatq, ctr, misp or et; code 2xx..5xx or error
//	tqflow_consumer_pending_messages{stream,consumer}      gauge
//	tqflow_consumer_ack_pending_messages{stream,consumer}  gauge
//	tqflow_consumer_redelivered_messages{stream,consumer}  gauge
//	tqflow_last_success_timestamp_seconds{job,instance}    gauge; unix time of the last successful run
//	tqflow_build_info{version,revision,goversion}      gauge, always 1
//
// Replicas of one worker share a consumer, so each reports the same
// consumer gauges: aggregate them with max, not sum.
//
// # Health
//
// /livez answers 200 while the process can answer at all: it checks no
// dependency, so that a NATS outage does not make an orchestrator restart
// every worker. /readyz answers 200 only while the NATS connection is up,
// the server is not shutting down, and every check added with
// [Server.AddCheck] passes; otherwise 503, naming the failing checks.
package obs
