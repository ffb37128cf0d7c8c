// Package golden compares what a test produced with a checked-in file,
// which only the -update flag rewrites (read its diff before committing).
package golden
