// Package detect holds the gateway's inference detectors, which run off the request path on
// the queries of each client: PRADA-style extraction detection (minimum distances per predicted
// class and a Shapiro-Wilk test), Blacklight-style query-attack detection (salted quantised
// hashes and a global index that also links clients), input drift against the endpoint's
// training baseline, and volume and pattern detectors (errors, sweeps, coverage). Each returns
// findings with evidence and MITRE ATLAS tags.
package detect
