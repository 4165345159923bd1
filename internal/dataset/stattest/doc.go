// Package stattest holds the two-sample tests and divergences pipewarden uses to compare a batch
// of data with its baseline: Kolmogorov-Smirnov with p-values that match
// scipy.stats.ks_2samp(method="auto"), chi-square, Benjamini-Hochberg correction, normed
// Wasserstein distance, Jensen-Shannon distance and the population stability index.
package stattest
