package bpfobs

import (
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
)

// RunBatch runs every job of the batch in order. A job that fails is
// reported and the batch continues; only a failure to emit stops it.
func RunBatch(b guestapi.Batch, emit func(kind string, payload any) error) error {
	for i, nj := range b.Jobs {
		if err := emit(guestapi.KindCase, guestapi.CaseStart{Index: i, Name: nj.Name}); err != nil {
			return err
		}
		if err := Run(nj.Job, emit); err != nil {
			if eerr := emit(guestapi.KindCaseError, guestapi.CaseError{Index: i, Name: nj.Name, Message: err.Error()}); eerr != nil {
				return fmt.Errorf("%v (and reporting it: %v)", err, eerr)
			}
		}
	}
	return nil
}
