package record

import (
	"fmt"

	"github.com/bpftramp/tramp/trampoline"
	"github.com/bpftramp/tramp/vm/facts"
	"github.com/bpftramp/tramp/vm/kernels"
	"github.com/bpftramp/tramp/vm/recording"
)

// ProfileOf is the model profile a recording is compared with, offline:
// the table profile of its build, or else the one its stated facts make
// with today's delta table (as tramp vm check made it from the image).
func ProfileOf(rec *recording.Recording) (*trampoline.Profile, error) {
	if p, err := trampoline.LookupProfile(rec.Profile); err == nil {
		return p, nil
	}
	k, err := facts.FromStated(rec.Kernel.Release, kernels.Arch(rec.Arch), rec.Kernel.Stated)
	if err != nil {
		return nil, fmt.Errorf("%s %s: no table profile and %w", rec.Profile, rec.Arch, err)
	}
	return k.Profile(rec.Profile)
}
