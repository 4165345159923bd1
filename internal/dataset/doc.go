// Package dataset profiles a tabular dataset into a versioned baseline and checks new batches
// against it: validation (schema, types, nulls, ranges, categories, ids, row counts), drift per
// column with severity from effect sizes, and manipulation indicators (label noise, near
// duplicates, outliers, class-conditional shift, off-baseline clusters) calibrated on held-out
// chunks of the baseline's own sample, so each finding says whether it looks like natural
// drift or suspected manipulation.
package dataset
