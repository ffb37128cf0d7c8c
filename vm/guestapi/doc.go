// Package guestapi is the wire format between the host and the guest
// (cmd/tramp-guest): the name of the results port, where the job file
// lives, the job description, the payloads of the standard records, and
// the params and records of each job kind: a bpf job (BPFJob, Batch;
// Start, Step, Observations, Capture, JobDone), a shapes job (ShapeJob;
// ShapeScan, Shape) and a bench job (BenchJob; BenchStart, BenchRound,
// BenchResult). Both sides import it; it imports nothing of tramp's but
// the trampoline model (Prog.Model), so that it stays at the bottom of
// the house and the guest still builds with CGO off for any arch.
package guestapi
