package store

// AlertStore is the durable state of the alerting pipeline. It is extended by the alerting work
// (issue #4); every Store implementation provides it and the conformance suite covers it.
type AlertStore interface{}
