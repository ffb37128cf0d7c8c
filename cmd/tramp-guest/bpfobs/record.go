package bpfobs

import (
	"encoding/binary"
	"fmt"
	"github.com/bpftramp/tramp/vm/guestapi"
)

// Layout of one observation record in the shared array map. Slot 0 of the
// map holds the global invocation counter (first 8 bytes); slot 1+k holds
// the record of the k-th invocation (k = counter value fetched by the
// program). All fields are little-endian (both supported arches are).
const (
	recSize    = 416
	recEntries = 1024 // map entries: 1 counter slot + 1023 record slots

	offOrder         = 0   // u64 global invocation order (0-based)
	offProg          = 8   // u32 program index in Job.Progs
	offPhase         = 12  // u32 phaseEntry/phaseExit/phaseModRet
	offFlags         = 16  // u32 recFlag*
	offArgCnt        = 24  // u64 bpf_get_func_arg_cnt
	offArgsOK        = 32  // u64 number of bpf_get_func_arg calls that succeeded
	offArgErr        = 40  // s64 return of the first failing bpf_get_func_arg (0: none failed)
	offArgs          = 48  // 12 × u64
	offRet           = 144 // u64 value from bpf_get_func_ret
	offRetStatus     = 152 // s64 return of bpf_get_func_ret
	offIP            = 160 // u64 bpf_get_func_ip
	offAttachCookie  = 168 // u64 bpf_get_attach_cookie
	offCookieRead    = 176 // u64 *bpf_session_cookie(ctx) before any write
	offCookieWritten = 184 // u64 value written at entry
	offCtx           = 192 // u64 ctx pointer (R1 at program entry)
	offCookiePtr     = 200 // u64 pointer returned by bpf_session_cookie
	offFrame         = 208 // frameWords × u64 read from ctx-frameBelow
	offFrameStatus   = 400 // s64 return of bpf_probe_read_kernel
	offMagic         = 408 // u64 recMagic, stored last

	maxArgs    = 12
	frameWords = 24
	frameBelow = 128 // bytes below ctx where the frame dump starts

	recMagic = 0x5342_4f50_4d41_5254 // "TRAMPOBS" little-endian

	phaseEntry  = 1
	phaseExit   = 2
	phaseModRet = 3

	recFlagRet    = 1 << 0
	recFlagIP     = 1 << 1
	recFlagCookie = 1 << 2
	recFlagFrame  = 1 << 3
)

func phaseName(p uint32) string {
	switch p {
	case phaseEntry:
		return "entry"
	case phaseExit:
		return "exit"
	case phaseModRet:
		return "modret"
	}
	return fmt.Sprintf("phase%d", p)
}

// DecodeRecord decodes one record slot. It returns an error when the slot
// is short or was never completed (no magic).
func DecodeRecord(b []byte) (guestapi.Obs, error) {
	var o guestapi.Obs
	if len(b) < recSize {
		return o, fmt.Errorf("record: %d bytes, want %d", len(b), recSize)
	}
	le := binary.NativeEndian // the BPF program stored it
	u64 := func(off int) uint64 { return le.Uint64(b[off:]) }
	if u64(offMagic) != recMagic {
		return o, fmt.Errorf("record: bad magic %#x", u64(offMagic))
	}
	o.Order = u64(offOrder)
	o.ProgIndex = int(le.Uint32(b[offProg:]))
	o.Phase = phaseName(le.Uint32(b[offPhase:]))
	flags := le.Uint32(b[offFlags:])
	o.ArgCnt = u64(offArgCnt)
	n := u64(offArgsOK)
	if n > maxArgs {
		return o, fmt.Errorf("record: args_ok %d > %d", n, maxArgs)
	}
	o.Args = make([]uint64, n)
	for i := range o.Args {
		o.Args[i] = u64(offArgs + 8*i)
	}
	o.ArgErr = errnoFromNeg(int64(u64(offArgErr)))
	if flags&recFlagRet != 0 {
		v := u64(offRet)
		o.Ret = &v
		o.RetStatus = errnoFromNeg(int64(u64(offRetStatus)))
	}
	if flags&recFlagIP != 0 {
		v := u64(offIP)
		o.IP = &v
	}
	o.AttachCookie = u64(offAttachCookie)
	o.Ctx = u64(offCtx)
	if flags&recFlagCookie != 0 {
		r := u64(offCookieRead)
		o.CookieRead = &r
		if o.Phase == "entry" {
			w := u64(offCookieWritten)
			o.CookieWritten = &w
		}
		if p := u64(offCookiePtr); p != 0 && o.Ctx != 0 {
			s := int64(o.Ctx-p) / 8
			o.CookieSlot = &s
		}
	}
	if flags&recFlagFrame != 0 {
		o.FrameOffset = -frameBelow
		o.FrameStatus = errnoFromNeg(int64(u64(offFrameStatus)))
		o.Frame = make([]uint64, frameWords)
		for i := range o.Frame {
			o.Frame[i] = u64(offFrame + 8*i)
		}
	}
	return o, nil
}

// DecodeRecords decodes the records of a map image: slot 0 is the counter,
// slots 1..min(counter, entries-1) are records. It returns the records
// sorted by slot (= global order), how many invocations happened, and the
// number lost because the map was full or a slot was unreadable.
func DecodeRecords(mem []byte, valueSize, entries int) (obs []guestapi.Obs, count, lost uint64, errs []string) {
	if len(mem) < valueSize || valueSize < 8 || entries < 1 {
		return nil, 0, 0, []string{"map image too short"}
	}
	count = binary.NativeEndian.Uint64(mem)
	n := count
	if max := uint64(entries - 1); n > max {
		lost += n - max
		n = max
	}
	for i := uint64(0); i < n; i++ {
		off := int(i+1) * valueSize
		if off+valueSize > len(mem) {
			lost += n - i
			errs = append(errs, "map image shorter than counter says")
			break
		}
		o, err := DecodeRecord(mem[off : off+valueSize])
		if err != nil {
			lost++
			errs = append(errs, fmt.Sprintf("slot %d: %v", i+1, err))
			continue
		}
		obs = append(obs, o)
	}
	return obs, count, lost, errs
}

// nativeOrder is the kernel's (this machine's) byte order as the
// encoders want it: binary.LittleEndian or binary.BigEndian (s390x),
// which cilium/ebpf's instruction and BTF marshalling accept, not
// binary.NativeEndian.
var nativeOrder = func() binary.ByteOrder {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	if b[0] == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}()
