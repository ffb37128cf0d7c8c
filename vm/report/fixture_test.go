package report

// sample is a whole run of two builds on two arches with one of each
// kind of outcome: passes, a skip, a mismatch with its diff, a boot that
// hung (a case without result, the console tail) and a kernel splat.
func sample() *Results {
	return &Results{Schema: SchemaVersion, Command: "check", Runs: []Run{
		{Build: "debian-7.2.13", Arch: "x86_64", Index: 0, Accel: "tcg", CPU: "max", CPUModel: "QEMU TCG CPU version 2.5+", Release: "7.2.13-amd64",
			HelloMS: 21_340, ElapsedMS: 95_120, Cases: []Case{
				{Case: "attach_fentry", Index: 0, Status: Pass, Result: "ok", Steps: 3, Runs: 1, Calls: 2, Images: 1, TimeMS: 1_200},
				{Case: "fsession_cookie", Index: 1, Status: Pass, Result: "ok", Steps: 5, Runs: 2, Calls: 4, Images: 2, TimeMS: 2_500},
				{Case: "not_here", Index: 2, Status: Skip, Result: "not in kernel", TimeMS: 40},
			}},
		{Build: "debian-7.2.13", Arch: "arm64", Index: 1, Accel: "tcg", CPU: "max", Release: "7.2.13-arm64",
			HelloMS: 30_000, ElapsedMS: 140_000, Splats: []Splat{{Kind: "warning", Line: 411, Excerpt: []string{"WARNING: CPU: 0 PID: 1 at kernel/bpf/trampoline.c:99", "Call trace:"}}},
			Cases: []Case{
				{Case: "attach_fentry", Index: 0, Status: Pass, Result: "ok", Steps: 3, Runs: 1, Calls: 2, Images: 1, TimeMS: 3_000},
				{Case: "slots_limit | mixed", Index: 1, Status: Fail, Result: "MISMATCH", Steps: 40, Runs: 3, Calls: 9, Images: 4, TimeMS: 9_876,
					Problems: []string{"line 12 attach p38: kernel E2BIG, model ok", "image 2: byte 0x40: kernel 0xd5, model <0x1f> & ```"}},
			}},
		{Build: "debian-6.18.15", Arch: "x86_64", Index: 2, Accel: "tcg", CPU: "max", HelloMS: 19_000, ElapsedMS: 600_000,
			Error: "guest hung: no record for 120s", ConsoleTail: []string{"[  99.1] rcu: INFO: rcu_preempt self-detected stall", "[ 100.0] end"},
			Cases: []Case{
				{Case: "attach_fentry", Index: 0, Status: Pass, Result: "ok", Steps: 3, Runs: 1, Calls: 2, Images: 1, TimeMS: 1_000},
				{Case: "churn", Index: 1, Status: Fail, Result: NoResult},
			}},
	}}
}
