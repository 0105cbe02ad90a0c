// Package rulesets is the fetcher's Emerging Threats job: for every
// configured ET source it tells, with one small request, whether the
// ruleset changed since the last run (the published .md5, else version.txt,
// else a conditional GET; see pkg/et); when it did, it downloads the
// artefact to a temporary file, verifies it, keeps it in the rulesets
// Object Store under its md5, and publishes one ruleset.v1 message per
// selected rules file on et.rulesets.<instance>. Only once the stream has
// stored every message does it record the new state in KV, so a failed run
// is simply done again next time.
//
// The IP lists of ET_BLOCK_LISTS are not rules: the same run hands them to
// package blocklists, which writes them as indicators. Both jobs check,
// download and keep their state through package etfetch.
//
// The ET Pro oinkcode is part of the download URL. pkg/et redacts it from
// every error and value it returns; this package never formats a URL or a
// configuration of its own, so it stays redacted.
package rulesets
