// Package record runs cases in real kernels under QEMU, keeps what each
// kernel did as a recording (package vm/recording, stored as
// cases/testdata/<kernel>/<arch>/<case>.json), and compares recordings
// with the trampoline model by replaying each case with cases.Replay and
// rendering it with the generator of the recorded boot
// (generators.ForBoot).
package record
