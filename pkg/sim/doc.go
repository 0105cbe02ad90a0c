// Package sim holds what tqflow's HTTP simulators share: fault injection, a
// ledger of every effective write, and request statistics.
//
// The simulators themselves live in subpackages, one per outside system:
// tqsim (ThreatQ), ctrsim (Cisco Threat Response), mispsim (MISP) and etsim
// (the Emerging Threats rules server). Each behaves like the real server as
// described in shared/contracts, quirks included: a simulator that is kinder
// than the real API makes the tests lie.
//
// Every simulator mounts the same admin routes under /_sim/ (see [Admin]):
// GET and PUT /_sim/faults, GET /_sim/ledger, GET /_sim/stats.
package sim
