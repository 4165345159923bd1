// Package audit is pipewarden's tamper-evident audit log: an append-only sequence of
// canonical-JSON records under an RFC 6962 Merkle tree (golang.org/x/mod/sumdb/tlog), with
// checkpoints signed in the C2SP signed-note format, published to witnesses, and the proofs,
// verification and evidence bundles an auditor needs to check that nothing was edited, removed,
// reordered or rolled back.
package audit
