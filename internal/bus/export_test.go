package bus

// MaxCoalesce is the coalescing cap, for the tests of package bus_test.
const MaxCoalesce = maxCoalesce
