// Package recording is the file format of what a real kernel did with one
// case: a Recording, stored as cases/testdata/<kernel>/<arch>/<case>.json
// (with variant and KASLR suffixes, see PathOf), and read back with Load
// and LoadAll. It holds the format only: vm/record makes recordings and
// compares them with the model; the guest's records inside (Start, Step,
// Observations, Capture) are vm/guestapi's wire types.
package recording
