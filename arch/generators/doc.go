// Package generators gives one view of every architecture generator, so
// that commands, the VM suite and the link model's size check can pick
// one by name, and ForBoot, the one constructor of "the generator for this
// boot" from its arch, x86 features and call thunks, used wherever a
// recorded boot is rendered (the VM compare, the recorded-image tests,
// tramp gen); the emulator runs whichever generator it is handed.
package generators
