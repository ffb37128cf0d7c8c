package bpfobs

import "fmt"

// Batch is the params of a "bpf" guest job: several jobs run one after
// another in one boot, each announced by a "case" record.
type Batch struct {
	Jobs []NamedJob `json:"jobs"`
}

// NamedJob is one job of a batch, named after its case.
type NamedJob struct {
	Name string `json:"name"`
	Job  Job    `json:"job"`
}

// Record kinds of a batch.
const (
	KindCase      = "case"       // CaseStart, before each job's records
	KindCaseError = "case_error" // CaseError, when a job stopped early
)

// CaseStart announces the job whose records follow.
type CaseStart struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
}

// CaseError says why a job stopped before its job_done record; the batch
// goes on with the next job.
type CaseError struct {
	Index   int    `json:"index"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

// RunBatch runs every job of the batch in order. A job that fails is
// reported and the batch continues; only a failure to emit stops it.
func RunBatch(b Batch, emit func(kind string, payload any) error) error {
	for i, nj := range b.Jobs {
		if err := emit(KindCase, CaseStart{Index: i, Name: nj.Name}); err != nil {
			return err
		}
		if err := Run(nj.Job, emit); err != nil {
			if eerr := emit(KindCaseError, CaseError{Index: i, Name: nj.Name, Message: err.Error()}); eerr != nil {
				return fmt.Errorf("%v (and reporting it: %v)", err, eerr)
			}
		}
	}
	return nil
}
