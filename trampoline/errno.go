package trampoline

import (
	"fmt"
	"strconv"
	"strings"
)

// Errno is a kernel error number as bpf(2) returns it (positive).
type Errno int

// The errnos the model produces. ENOTSUPP (524) is kernel-internal but
// reaches userspace from the trampoline code unchanged.
const (
	ENOENT     Errno = 2
	ENOMEM     Errno = 12
	EACCES     Errno = 13
	EBUSY      Errno = 16
	EINVAL     Errno = 22
	E2BIG      Errno = 7
	EOPNOTSUPP Errno = 95
	ENOTSUPP   Errno = 524
)

var errnoNames = map[Errno]string{
	ENOENT:     "ENOENT",
	ENOMEM:     "ENOMEM",
	EACCES:     "EACCES",
	EBUSY:      "EBUSY",
	EINVAL:     "EINVAL",
	E2BIG:      "E2BIG",
	EOPNOTSUPP: "EOPNOTSUPP",
	ENOTSUPP:   "ENOTSUPP",
}

// String gives the errno's name, or "errno N" when the model has no name.
func (e Errno) String() string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// ParseErrno reads an errno name such as "EBUSY" (or a number).
func ParseErrno(s string) (Errno, bool) {
	for e, n := range errnoNames {
		if strings.EqualFold(n, s) {
			return e, true
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return Errno(n), true
	}
	return 0, false
}

// ErrnoNames lists the names ParseErrno accepts, for error messages.
func ErrnoNames() []string {
	return []string{"EINVAL", "EBUSY", "E2BIG", "EOPNOTSUPP", "ENOTSUPP", "EACCES", "ENOENT", "ENOMEM"}
}

// Stage says which kernel step refused: loading the program (the
// verifier's attach-target checks and its return-range check) or
// creating the link (the trampoline).
type Stage string

// Stages of an attach.
const (
	StageLoad   Stage = "load"
	StageAttach Stage = "attach"
)

// Error is a refusal the kernel would give: the errno, the stage, and a
// message paraphrasing the kernel's log line or reason.
type Error struct {
	Errno Errno
	Stage Stage
	Msg   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s at %s: %s", e.Errno, e.Stage, e.Msg)
}

func loadErr(errno Errno, format string, args ...any) *Error {
	return &Error{Errno: errno, Stage: StageLoad, Msg: fmt.Sprintf(format, args...)}
}

func attachErr(errno Errno, format string, args ...any) *Error {
	return &Error{Errno: errno, Stage: StageAttach, Msg: fmt.Sprintf(format, args...)}
}
