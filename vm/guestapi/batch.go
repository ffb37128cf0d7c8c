package guestapi

// Batch is the params of a "bpf" guest job: several jobs run one after
// another in one boot, each announced by a "case" record.
type Batch struct {
	Jobs []NamedJob `json:"jobs"`
}

// NamedJob is one job of a batch, named after its case.
type NamedJob struct {
	Name string `json:"name"`
	Job  BPFJob `json:"job"`
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
