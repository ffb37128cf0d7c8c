package bpfobs

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestErrnoName(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{syscall.Errno(0), "ok"},
		{syscall.EINVAL, "EINVAL"},
		{syscall.EBUSY, "EBUSY"},
		{syscall.E2BIG, "E2BIG"},
		{syscall.EOPNOTSUPP, "EOPNOTSUPP"},
		{syscall.EAGAIN, "EAGAIN"},
		{syscall.Errno(524), "ENOTSUPP"},
		{syscall.Errno(4000), "E4000"},
		{fmt.Errorf("wrapped: %w", syscall.EPERM), "EPERM"},
		{errors.New("plain"), "plain"},
	} {
		if got := ErrnoName(c.err); got != c.want {
			t.Errorf("ErrnoName(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestErrnoFromNeg(t *testing.T) {
	for _, c := range []struct {
		v    int64
		want string
	}{{0, "ok"}, {-22, "EINVAL"}, {-95, "EOPNOTSUPP"}, {-524, "ENOTSUPP"}, {5, "+5"}, {-5000, "-5000"}} {
		if got := errnoFromNeg(c.v); got != c.want {
			t.Errorf("errnoFromNeg(%d) = %q, want %q", c.v, got, c.want)
		}
	}
}
