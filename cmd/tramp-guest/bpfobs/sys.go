//go:build linux

package bpfobs

import (
	"fmt"
	"runtime"
	"structs"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw bpf(2) plumbing. The attribute structs follow the layout of union
// bpf_attr / struct bpf_prog_info in include/uapi/linux/bpf.h; trailing
// fields the running kernel does not know must be zero (the kernel checks
// that), which they are.

const (
	cmdMapCreate      = 0
	cmdMapUpdateElem  = 2
	cmdProgLoad       = 5
	cmdProgTestRun    = 10
	cmdObjGetInfoByFD = 15
	cmdLinkCreate     = 28
	cmdBtfLoad        = 18

	progTypeSocketFilter = 1

	progTypeTracing = 26
	progTypeExt     = 28

	attachFentry   = 24
	attachFexit    = 25
	attachModRet   = 26
	attachFsession = 58
	// The tracing multi-link attach types (7.2+).
	attachFentryMulti   = 59
	attachFexitMulti    = 60
	attachFsessionMulti = 61

	mapTypeArray     = 2
	mapTypeProgArray = 3
	flagMmapable     = 1 << 10

	flagSleepable = 1 << 4 // BPF_F_SLEEPABLE
)

type progLoadAttr struct {
	_                  structs.HostLayout
	ProgType           uint32
	InsnCnt            uint32
	Insns              uint64
	License            uint64
	LogLevel           uint32
	LogSize            uint32
	LogBuf             uint64
	KernVersion        uint32
	ProgFlags          uint32
	ProgName           [16]byte
	ProgIfindex        uint32
	ExpectedAttachType uint32
	ProgBtfFd          uint32
	FuncInfoRecSize    uint32
	FuncInfo           uint64
	FuncInfoCnt        uint32
	LineInfoRecSize    uint32
	LineInfo           uint64
	LineInfoCnt        uint32
	AttachBtfID        uint32
	AttachBtfObjFd     uint32
	CoreReloCnt        uint32
	FdArray            uint64
	CoreRelos          uint64
	CoreReloRecSize    uint32
	LogTrueSize        uint32
}

type linkCreateTracingAttr struct {
	_          structs.HostLayout
	ProgFd     uint32
	TargetFd   uint32
	AttachType uint32
	Flags      uint32
	TargetBtf  uint32
	_          [4]byte
	Cookie     uint64
}

// linkCreateTracingMultiAttr is link_create with its tracing_multi
// member: ids points to cnt u32 BTF ids, cookies to cnt u64 cookies (0:
// none).
type linkCreateTracingMultiAttr struct {
	_          structs.HostLayout
	ProgFd     uint32
	TargetFd   uint32
	AttachType uint32
	Flags      uint32
	IDs        uint64
	Cookies    uint64
	Cnt        uint32
	_          [4]byte
}

type progRunAttr struct {
	_           structs.HostLayout
	ProgFd      uint32
	Retval      uint32
	DataSizeIn  uint32
	DataSizeOut uint32
	DataIn      uint64
	DataOut     uint64
	Repeat      uint32
	Duration    uint32
	CtxSizeIn   uint32
	CtxSizeOut  uint32
	CtxIn       uint64
	CtxOut      uint64
	Flags       uint32
	CPU         uint32
	BatchSize   uint32
	_           [4]byte
}

type mapCreateAttr struct {
	_          structs.HostLayout
	MapType    uint32
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	MapFlags   uint32
	InnerMapFd uint32
	NumaNode   uint32
	MapName    [16]byte
}

type objInfoAttr struct {
	_       structs.HostLayout
	BpfFd   uint32
	InfoLen uint32
	Info    uint64
}

// progInfo is the head of struct bpf_prog_info (up to verified_insns and
// the attach BTF ids); the kernel copies min(its size, ours).
type progInfo struct {
	_                    structs.HostLayout
	Type                 uint32
	ID                   uint32
	Tag                  [8]byte
	JitedProgLen         uint32
	XlatedProgLen        uint32
	JitedProgInsns       uint64
	XlatedProgInsns      uint64
	LoadTime             uint64
	CreatedByUID         uint32
	NrMapIDs             uint32
	MapIDs               uint64
	Name                 [16]byte
	Ifindex              uint32
	GPL                  uint32
	NetnsDev             uint64
	NetnsIno             uint64
	NrJitedKsyms         uint32
	NrJitedFuncLens      uint32
	JitedKsyms           uint64
	JitedFuncLens        uint64
	BtfID                uint32
	FuncInfoRecSize      uint32
	FuncInfo             uint64
	NrFuncInfo           uint32
	NrLineInfo           uint32
	LineInfo             uint64
	JitedLineInfo        uint64
	NrJitedLineInfo      uint32
	LineInfoRecSize      uint32
	JitedLineInfoRecSize uint32
	NrProgTags           uint32
	ProgTags             uint64
	RunTimeNs            uint64
	RunCnt               uint64
	RecursionMisses      uint64
	VerifiedInsns        uint32
	AttachBtfObjID       uint32
	AttachBtfID          uint32
	_                    [4]byte
}

func bpfCall(cmd uintptr, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, e := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if e != 0 {
		return 0, e
	}
	return r, nil
}

func ptr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

func objName(s string) (n [16]byte) {
	j := 0
	for i := 0; i < len(s) && j < 15; i++ {
		c := s[i]
		if c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			n[j] = c
			j++
		}
	}
	return n
}

type loadSpec struct {
	name       string
	progType   uint32
	attachType uint32
	btfID      uint32
	sleepable  bool
	insns      []byte // marshalled instructions, 8 bytes each
	// BPF-program targets: the program's BTF and func_info records (8
	// bytes each), and the target program a tracing program attaches to.
	btfFD        int
	funcInfo     []byte
	attachProgFD int
}

// loadProg runs BPF_PROG_LOAD. It loads once without a log; on failure it
// retries with a verifier log and returns the log along with the first
// error.
func loadProg(s loadSpec) (fd int, log string, err error) {
	fd, err = loadProgLog(s, nil)
	if err == nil {
		return fd, "", nil
	}
	buf := make([]byte, 1<<20)
	fd2, err2 := loadProgLog(s, buf)
	if err2 == nil { // should not happen; keep the program anyway
		return fd2, "", nil
	}
	n := 0
	for n < len(buf) && buf[n] != 0 {
		n++
	}
	return -1, string(buf[:n]), err
}

func loadProgLog(s loadSpec, logBuf []byte) (int, error) {
	lic := []byte("GPL\x00")
	a := progLoadAttr{
		ProgType:           s.progType,
		InsnCnt:            uint32(len(s.insns) / 8),
		Insns:              ptr(&s.insns[0]),
		License:            ptr(&lic[0]),
		ProgName:           objName(s.name),
		ExpectedAttachType: s.attachType,
		AttachBtfID:        s.btfID,
	}
	if s.sleepable {
		a.ProgFlags = flagSleepable
	}
	if len(s.funcInfo) > 0 {
		a.ProgBtfFd = uint32(s.btfFD)
		a.FuncInfoRecSize = 8
		a.FuncInfo = ptr(&s.funcInfo[0])
		a.FuncInfoCnt = uint32(len(s.funcInfo) / 8)
	}
	if s.attachProgFD > 0 {
		a.AttachBtfObjFd = uint32(s.attachProgFD) // the attach_prog_fd member of the union
	}
	if len(logBuf) > 0 {
		a.LogLevel = 1
		a.LogSize = uint32(len(logBuf))
		a.LogBuf = ptr(&logBuf[0])
	}
	r, err := bpfCall(cmdProgLoad, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(s.insns)
	runtime.KeepAlive(lic)
	runtime.KeepAlive(s.funcInfo)
	runtime.KeepAlive(logBuf)
	if err != nil {
		return -1, err
	}
	return int(r), nil
}

func linkCreateTracing(progFd int, attachType uint32, cookie uint64) (int, error) {
	a := linkCreateTracingAttr{ProgFd: uint32(progFd), AttachType: attachType, Cookie: cookie}
	r, err := bpfCall(cmdLinkCreate, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		return -1, err
	}
	return int(r), nil
}

// linkCreateTracingMulti links one program to the functions with BTF
// ids ids through a tracing multi link (BPF_LINK_CREATE with
// link_create.tracing_multi); cookies may be nil.
func linkCreateTracingMulti(progFd int, attachType uint32, ids []uint32, cookies []uint64) (int, error) {
	a := linkCreateTracingMultiAttr{ProgFd: uint32(progFd), AttachType: attachType, Cnt: uint32(len(ids))}
	if len(ids) > 0 {
		a.IDs = ptr(&ids[0])
	}
	if len(cookies) > 0 {
		a.Cookies = ptr(&cookies[0])
	}
	r, err := bpfCall(cmdLinkCreate, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(ids)
	runtime.KeepAlive(cookies)
	if err != nil {
		return -1, err
	}
	return int(r), nil
}

func testRun(progFd int) (retval uint32, duration uint32, err error) {
	return testRunData(progFd, nil)
}

// testRunData runs a program once on data (a packet, for socket filters).
func testRunData(progFd int, data []byte) (retval uint32, duration uint32, err error) {
	a := progRunAttr{ProgFd: uint32(progFd)}
	if len(data) > 0 {
		a.DataSizeIn, a.DataIn = uint32(len(data)), ptr(&data[0])
	}
	_, err = bpfCall(cmdProgTestRun, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(data)
	return a.Retval, a.Duration, err
}

type btfLoadAttr struct {
	_           structs.HostLayout
	Btf         uint64
	BtfLogBuf   uint64
	BtfSize     uint32
	BtfLogSize  uint32
	BtfLogLevel uint32
	_           [4]byte
}

// loadBTF runs BPF_BTF_LOAD; on failure it retries with a log and
// returns it.
func loadBTF(raw []byte) (int, string, error) {
	load := func(logBuf []byte) (int, error) {
		a := btfLoadAttr{Btf: ptr(&raw[0]), BtfSize: uint32(len(raw))}
		if len(logBuf) > 0 {
			a.BtfLogBuf, a.BtfLogSize, a.BtfLogLevel = ptr(&logBuf[0]), uint32(len(logBuf)), 1
		}
		r, err := bpfCall(cmdBtfLoad, unsafe.Pointer(&a), unsafe.Sizeof(a))
		runtime.KeepAlive(raw)
		runtime.KeepAlive(logBuf)
		return int(r), err
	}
	if len(raw) == 0 {
		return -1, "", fmt.Errorf("empty BTF")
	}
	fd, err := load(nil)
	if err == nil {
		return fd, "", nil
	}
	buf := make([]byte, 64<<10)
	if fd2, err2 := load(buf); err2 == nil {
		return fd2, "", nil
	}
	n := 0
	for n < len(buf) && buf[n] != 0 {
		n++
	}
	return -1, string(buf[:n]), err
}

// newProgArray creates a BPF_MAP_TYPE_PROG_ARRAY with n slots.
func newProgArray(n uint32) (int, error) {
	a := mapCreateAttr{MapType: mapTypeProgArray, KeySize: 4, ValueSize: 4, MaxEntries: n, MapName: objName("tramp_jmp")}
	r, err := bpfCall(cmdMapCreate, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		return -1, err
	}
	return int(r), nil
}

func getProgInfo(fd int) (progInfo, error) {
	var info progInfo
	var ksym uint64
	var flen uint32
	// One call is enough: the kernel fills nr_jited_ksyms etc. and copies at
	// most as many entries as we offer (1: these programs have no subprogs).
	info.NrJitedKsyms = 1
	info.JitedKsyms = ptr(&ksym)
	info.NrJitedFuncLens = 1
	info.JitedFuncLens = ptr(&flen)
	a := objInfoAttr{BpfFd: uint32(fd), InfoLen: uint32(unsafe.Sizeof(info)), Info: ptr(&info)}
	_, err := bpfCall(cmdObjGetInfoByFD, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(&ksym)
	runtime.KeepAlive(&flen)
	if err != nil {
		return info, err
	}
	if info.NrJitedKsyms > 0 {
		info.JitedKsyms = ksym
	} else {
		info.JitedKsyms = 0
	}
	if info.NrJitedFuncLens > 0 {
		info.JitedFuncLens = uint64(flen)
	} else {
		info.JitedFuncLens = 0
	}
	return info, nil
}

// obsMap is an mmapable BPF array shared by every observer program.
type obsMap struct {
	fd  int
	mem []byte
}

func newObsMap(valueSize, entries uint32) (*obsMap, error) {
	a := mapCreateAttr{MapType: mapTypeArray, KeySize: 4, ValueSize: valueSize, MaxEntries: entries, MapFlags: flagMmapable, MapName: objName("tramp_obs")}
	r, err := bpfCall(cmdMapCreate, unsafe.Pointer(&a), unsafe.Sizeof(a))
	if err != nil {
		return nil, fmt.Errorf("map create: %w", err)
	}
	fd := int(r)
	size := (int(valueSize)*int(entries) + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("map mmap: %w", err)
	}
	return &obsMap{fd: fd, mem: mem}, nil
}

func (m *obsMap) close() {
	if m == nil {
		return
	}
	unix.Munmap(m.mem)
	unix.Close(m.fd)
}

type mapElemAttr struct {
	_     structs.HostLayout
	MapFd uint32
	_     [4]byte
	Key   uint64
	Value uint64
	Flags uint64
}

// mapUpdateU32 sets a 4-byte key to a 4-byte value (BPF_MAP_UPDATE_ELEM).
func mapUpdateU32(mapFD int, key, value uint32) error {
	a := mapElemAttr{MapFd: uint32(mapFD), Key: ptr(&key), Value: ptr(&value)}
	_, err := bpfCall(cmdMapUpdateElem, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(&key)
	runtime.KeepAlive(&value)
	return err
}

// progKsyms returns the JITed address of each of a program's n
// functions (bpf_prog_info.jited_ksyms, main function first).
func progKsyms(fd, n int) ([]uint64, error) {
	if n < 1 {
		return nil, fmt.Errorf("progKsyms: %d functions", n)
	}
	var info progInfo
	ksyms := make([]uint64, n)
	info.NrJitedKsyms = uint32(n)
	info.JitedKsyms = ptr(&ksyms[0])
	a := objInfoAttr{BpfFd: uint32(fd), InfoLen: uint32(unsafe.Sizeof(info)), Info: ptr(&info)}
	_, err := bpfCall(cmdObjGetInfoByFD, unsafe.Pointer(&a), unsafe.Sizeof(a))
	runtime.KeepAlive(ksyms)
	if err != nil {
		return nil, err
	}
	return ksyms[:min(n, int(info.NrJitedKsyms))], nil
}
