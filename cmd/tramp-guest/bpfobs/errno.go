package bpfobs

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Kernel-internal error numbers (include/linux/errno.h) that can leak out
// of bpf(2); userspace headers do not name them.
var internalErrnos = map[syscall.Errno]string{
	512: "ERESTARTSYS",
	513: "ERESTARTNOINTR",
	514: "ERESTARTNOHAND",
	515: "ENOIOCTLCMD",
	516: "ERESTART_RESTARTBLOCK",
	517: "EPROBE_DEFER",
	518: "EOPENSTALEDENTRY",
	521: "EBADHANDLE",
	522: "ENOTSYNC",
	523: "EBADCOOKIE",
	524: "ENOTSUPP",
	525: "ETOOSMALL",
	526: "ESERVERFAULT",
	527: "EBADTYPE",
	528: "EJUKEBOX",
	529: "EIOCBQUEUED",
	530: "ERECALLCONFLICT",
}

// ErrnoName names the result of a bpf(2) call: "ok" for nil, the errno's
// symbolic name ("EINVAL", "ENOTSUPP", ...) for an errno, and "E<number>"
// for an errno without a name. Other errors give their text.
func ErrnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var e syscall.Errno
	if !errors.As(err, &e) {
		return err.Error()
	}
	if e == 0 {
		return "ok"
	}
	if n, ok := internalErrnos[e]; ok {
		return n
	}
	if n := unix.ErrnoName(e); n != "" {
		// EOPNOTSUPP and ENOTSUP share a number; prefer the name the
		// kernel uses.
		if e == unix.EOPNOTSUPP {
			return "EOPNOTSUPP"
		}
		if e == unix.EAGAIN {
			return "EAGAIN"
		}
		return n
	}
	return fmt.Sprintf("E%d", int(e))
}

// errnoFromNeg names a negative kernel return code as stored by helpers
// (e.g. -22 → "EINVAL"); 0 gives "ok", positive values "+N".
func errnoFromNeg(v int64) string {
	if v == 0 {
		return "ok"
	}
	if v > 0 || v < -4095 {
		return fmt.Sprintf("%+d", v)
	}
	return ErrnoName(syscall.Errno(-v))
}
