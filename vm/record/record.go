package record

import (
	"bytes"
	"encoding/hex"
	"encoding/json"

	"github.com/bpftramp/tramp/cases"
	"github.com/bpftramp/tramp/vm/guestapi"
)

// JobFor translates a case into the guest's job: its target, programs and
// every step in order, with image capture on.
func JobFor(c *cases.Case) guestapi.BPFJob {
	j := guestapi.BPFJob{Target: c.Target.Name, Capture: true}
	if a := c.Target.Attrs; a.BPFProg {
		tp := &guestapi.TargetProg{TailCall: a.TailCallReachable, TailCallSubprog: a.TailCallViaSubprog, TailCallTaken: a.TailCallTaken,
			GlobalSubprog: a.GlobalSubprog,
			Args:          []string{}, Ret: c.Target.Proto.Ret.String()}
		for _, t := range c.Target.Proto.Args {
			tp.Args = append(tp.Args, t.String())
		}
		j.TargetProg = tp
	}
	for _, t := range c.Extra {
		j.Targets = append(j.Targets, t.Name)
	}
	for _, p := range c.Progs {
		j.Progs = append(j.Progs, guestapi.Prog{Name: p.Name, Kind: p.Kind.String(), Cookie: p.Cookie, IP: p.IP,
			Sleepable: p.Sleepable, LinkCookie: p.LinkCookie, Returns: p.Returns, Target: c.On[p.Name]})
	}
	for _, s := range c.Steps {
		op := guestapi.Op{Op: string(s.Op), Line: s.Line, On: s.Funcs, Cookies: s.Cookies, Func: s.Func}
		if s.Prog != nil {
			op.Prog = s.Prog.Name
		}
		j.Ops = append(j.Ops, op)
	}
	return j
}

// BatchJob is the guest job that runs several cases in one boot.
func BatchJob(cs []*cases.Case) (guestapi.Job, error) { return batchJob(cs, nil) }

func batchJob(cs []*cases.Case, extra []guestapi.NamedJob) (guestapi.Job, error) {
	var b guestapi.Batch
	for _, c := range cs {
		b.Jobs = append(b.Jobs, guestapi.NamedJob{Name: c.Name, Job: JobFor(c)})
	}
	b.Jobs = append(b.Jobs, extra...)
	params, err := json.Marshal(b)
	if err != nil {
		return guestapi.Job{}, err
	}
	return guestapi.Job{Kind: guestapi.JobBPF, Params: params}, nil
}

// Tail lengths kept after the code of a captured image.
const (
	x86Tail   = 64 + 16 // BPF_INSN_SAFETY zeros, then some pack fill
	arm64Tail = 16      // after the run of brk words
)

// trimCapture cuts a capture's bytes to the image: the code, the x86
// 64-byte safety tail (zeros under init_on_alloc) or the arm64 brk #0x100
// fill up to the size-pass length, and a few bytes after; the bytes of
// whatever follows in the pack are dropped. It also drops the kallsyms
// listing, which is large and the same in every capture of a boot.
func trimCapture(c *guestapi.Capture, arch string) {
	c.BPFSyms = nil
	b, err := hex.DecodeString(c.Bytes)
	if err != nil {
		return
	}
	end := len(b)
	switch arch {
	case "x86_64":
		// The code ends where 64 zero bytes followed by 0xcc fill start.
		pat := append(bytes.Repeat([]byte{0}, 64), 0xcc)
		if i := bytes.Index(b, pat); i >= 0 {
			end = min(len(b), i+x86Tail)
		}
	case "arm64":
		brk := []byte{0x00, 0x20, 0x20, 0xd4}
		for i := 0; i+4 <= len(b); i += 4 {
			if bytes.Equal(b[i:i+4], brk) {
				j := i
				for j+4 <= len(b) && bytes.Equal(b[j:j+4], brk) {
					j += 4
				}
				end = min(len(b), j+arm64Tail)
				break
			}
		}
	}
	c.Bytes = hex.EncodeToString(b[:end])
}
