package bpfobs

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bpftramp/tramp/trampoline"
)

type fakeRec struct {
	order              uint64
	prog, phase, flags uint32
	argCnt             uint64
	args               []uint64
	argErr             int64
	ret                uint64
	retStatus          int64
	ip, attachCookie   uint64
	cookieRead         uint64
	cookieWritten      uint64
	ctx, cookiePtr     uint64
	frame              []uint64
}

func (f fakeRec) bytes() []byte {
	b := make([]byte, recSize)
	le := binary.LittleEndian
	le.PutUint64(b[offOrder:], f.order)
	le.PutUint32(b[offProg:], f.prog)
	le.PutUint32(b[offPhase:], f.phase)
	le.PutUint32(b[offFlags:], f.flags)
	le.PutUint64(b[offArgCnt:], f.argCnt)
	le.PutUint64(b[offArgsOK:], uint64(len(f.args)))
	le.PutUint64(b[offArgErr:], uint64(f.argErr))
	for i, a := range f.args {
		le.PutUint64(b[offArgs+8*i:], a)
	}
	le.PutUint64(b[offRet:], f.ret)
	le.PutUint64(b[offRetStatus:], uint64(f.retStatus))
	le.PutUint64(b[offIP:], f.ip)
	le.PutUint64(b[offAttachCookie:], f.attachCookie)
	le.PutUint64(b[offCookieRead:], f.cookieRead)
	le.PutUint64(b[offCookieWritten:], f.cookieWritten)
	le.PutUint64(b[offCtx:], f.ctx)
	le.PutUint64(b[offCookiePtr:], f.cookiePtr)
	for i, w := range f.frame {
		le.PutUint64(b[offFrame+8*i:], w)
	}
	le.PutUint64(b[offMagic:], recMagic)
	return b
}

func TestDecodeRecord(t *testing.T) {
	ctx := uint64(0xffa00000005d3ba0)
	entry := fakeRec{
		order: 0, prog: 2, phase: phaseEntry, flags: recFlagRet | recFlagCookie | recFlagIP | recFlagFrame,
		argCnt: 1, args: []uint64{1}, argErr: -22, ip: 0xffffffff8123, attachCookie: 0x1234,
		cookieWritten: trampoline.CookieValueFor(2), ctx: ctx, cookiePtr: ctx - 24, frame: make([]uint64, frameWords),
	}
	o, err := DecodeRecord(entry.bytes())
	require.NoError(t, err)
	if o.Phase != "entry" || o.ProgIndex != 2 || len(o.Args) != 1 || o.Args[0] != 1 || o.ArgErr != "EINVAL" {
		t.Errorf("decoded %+v", o)
	}
	if o.Ret == nil || *o.Ret != 0 || o.RetStatus != "ok" || o.IP == nil || *o.IP != 0xffffffff8123 || o.AttachCookie != 0x1234 {
		t.Errorf("ret/ip/cookie %+v", o)
	}
	if o.CookieRead == nil || *o.CookieRead != 0 || o.CookieWritten == nil || *o.CookieWritten != 0xC0DE00000000025E {
		t.Errorf("session cookie %+v", o)
	}
	if o.CookieSlot == nil || *o.CookieSlot != 3 {
		t.Errorf("cookie slot %v", o.CookieSlot)
	}
	if len(o.Frame) != frameWords || o.FrameOffset != -frameBelow || o.FrameStatus != "ok" {
		t.Errorf("frame %d %d %q", len(o.Frame), o.FrameOffset, o.FrameStatus)
	}

	exit := fakeRec{order: 1, phase: phaseExit, flags: recFlagCookie, ctx: ctx, cookiePtr: ctx - 16, cookieRead: 7}
	o, err = DecodeRecord(exit.bytes())
	require.NoError(t, err)
	if o.Phase != "exit" || o.CookieWritten != nil || *o.CookieRead != 7 || o.Ret != nil || o.IP != nil || o.Frame != nil {
		t.Errorf("exit %+v", o)
	}

	bad := exit.bytes()
	bad[offMagic] ^= 1
	if _, err := DecodeRecord(bad); err == nil {
		t.Error("bad magic accepted")
	}
	if _, err := DecodeRecord(bad[:100]); err == nil {
		t.Error("short record accepted")
	}
	tooMany := exit.bytes()
	binary.LittleEndian.PutUint64(tooMany[offArgsOK:], 13)
	if _, err := DecodeRecord(tooMany); err == nil {
		t.Error("args_ok 13 accepted")
	}
}

func mapImage(count uint64, entries int, recs ...fakeRec) []byte {
	mem := make([]byte, recSize*entries)
	binary.LittleEndian.PutUint64(mem, count)
	for i, r := range recs {
		copy(mem[(i+1)*recSize:], r.bytes())
	}
	return mem
}

func TestDecodeRecords(t *testing.T) {
	mem := mapImage(3, 8, fakeRec{order: 0, phase: phaseEntry}, fakeRec{order: 1, phase: phaseModRet}, fakeRec{order: 2, phase: phaseExit})
	obs, n, lost, errs := DecodeRecords(mem, recSize, 8)
	if n != 3 || lost != 0 || len(errs) != 0 || len(obs) != 3 || obs[1].Phase != "modret" || obs[2].Order != 2 {
		t.Fatalf("obs %+v n %d lost %d errs %v", obs, n, lost, errs)
	}
	// Counter beyond the map: the overflow is lost, slots without magic too.
	mem = mapImage(10, 4, fakeRec{}, fakeRec{order: 1})
	obs, n, lost, errs = DecodeRecords(mem, recSize, 4)
	if n != 10 || len(obs) != 2 || lost != 8 || len(errs) != 1 {
		t.Fatalf("overflow: %d obs n %d lost %d errs %v", len(obs), n, lost, errs)
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(mapImage(2, 3, fakeRec{phase: phaseEntry, flags: 15, args: []uint64{1}}, fakeRec{phase: phaseExit, flags: 15}), uint16(3))
	f.Add(make([]byte, 16), uint16(1))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, mem []byte, entries uint16) {
		obs, n, lost, _ := DecodeRecords(mem, recSize, int(entries))
		if lost > n || len(obs) > int(entries) {
			t.Fatalf("%d obs, lost %d from %d entries", len(obs), lost, entries)
		}
		for _, o := range obs {
			if len(o.Args) > maxArgs {
				t.Fatalf("%d args", len(o.Args))
			}
		}
		if len(mem) >= recSize {
			DecodeRecord(mem)
		}
	})
}
