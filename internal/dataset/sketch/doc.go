// Package sketch holds the bounded-memory, mergeable summaries a dataset profile is made of: a
// KLL quantile sketch, a HyperLogLog distinct counter, a space-saving frequent-values counter and
// a seeded reservoir sample.
package sketch
