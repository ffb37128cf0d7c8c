// Package initramfs writes (and, for tests and debugging, reads) the newc
// cpio archives that the Linux kernel unpacks as its initial root file
// system. Build produces the gzip'd archive used to boot the tramp guest:
// /dev, /dev/console, /proc, /sys, the guest binary as /init, and any extra
// files such as the job description.
//
// The format is the "new ASCII" cpio format (magic 070701): each entry is a
// 110-byte header of thirteen 8-digit hex fields, the NUL-terminated name
// padded so that header plus name is a multiple of four bytes, then the data
// padded to a multiple of four. The archive ends with an entry named
// TRAILER!!!. All timestamps are zero and owners root, so the same inputs
// always give the same bytes.
package initramfs
