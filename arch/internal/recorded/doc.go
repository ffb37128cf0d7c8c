// Package recorded reads the trampoline bytes captured from real kernels
// (cases/testdata/<kernel>/<arch>/*.json) for the architecture packages'
// tests and benchmarks, without depending on the VM harness. It reads
// only the keys it needs of vm/recording's format (arch may not import
// vm); vm/recording's TestArchReaderKeys holds the two in step.
package recorded
