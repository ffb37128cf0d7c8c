package emu

import "strings"

// Costs counts what one run of an image executed inside the image: the
// trampoline's own instructions, not the helpers, the programs or the
// traced function's body, which are stubs here.
type Costs struct {
	// Insns are the image instructions executed (Result.Insns).
	Insns int `json:"insns"`
	// Loads and Stores count executed instructions that read or write
	// memory: on x86_64 pop, ret and leave are loads, push and call are
	// stores, and an ALU instruction on memory is both (cmp and test only
	// a load); on arm64 ldr/ldp are loads and str/stp stores (a pair is
	// one instruction); on riscv64 ld/lw are loads and sd/sw stores; on
	// s390x lg, ltg and lmg are loads, stg and stmg stores, and mvc and
	// xc both.
	Loads  int `json:"loads"`
	Stores int `json:"stores"`
	// Calls are the helpers and programs the image called. The traced
	// function's body is not counted (every run enters it once: called
	// by the image, or returned or jumped into after the fentry
	// programs), nor is a jump to x86's return thunk (a return) or to
	// an s390x expoline thunk (a branch).
	Calls int `json:"calls"`
	// Branches are executed branch instructions other than call/bl/blr
	// (riscv64: jal/jalr that link; s390x: brasl and basr): jumps taken
	// or not, conditional or not, and returns (s390x's no-ops, brcl and
	// bcr with mask 0 and bcr to %r0, are not counted).
	Branches int `json:"branches"`
}

// RunCosts runs the image once, like Run, and also counts its Costs. It
// traces the run (r.Trace, if set, still sees every step).
func (e *Emulator) RunCosts(r Run) (*Result, Costs) {
	var c Costs
	user := r.Trace
	r.Trace = func(s TraceStep) {
		if user != nil {
			user(s)
		}
		if s.Off < 0 {
			if s.Text != "<x86_return_thunk>" && s.Text != "<original function>" && !strings.HasPrefix(s.Text, "<__s390_indirect_jump_r") {
				c.Calls++
			}
			return
		}
		switch {
		case e.x86 != nil:
			if o := e.x86[s.Off]; o != nil {
				c.addX86(o)
			}
		case e.rv != nil:
			if o := e.rv[s.Off/2]; o != nil {
				c.addRV(o)
			}
		case e.sz != nil:
			if o := e.sz[s.Off/2]; o != nil {
				c.addS390(o)
			}
		default:
			if o := e.a64[s.Off/4]; o != nil {
				c.addA64(o)
			}
		}
	}
	res := e.Run(r)
	c.Insns = res.Insns
	return res, c
}

func (c *Costs) addX86(o *xop) {
	switch o.kind {
	case xPop, xLoad:
		c.Loads++
	case xRet, xLeave:
		c.Loads++
		if o.kind == xRet {
			c.Branches++
		}
	case xPush, xStore, xStoreImm:
		c.Stores++
	case xAluMI:
		c.Loads++
		if o.alu != aluCmp && o.alu != aluTest {
			c.Stores++
		}
	case xCall, xCallR:
		c.Stores++
	case xJcc, xJmp:
		c.Branches++
	}
}

func (c *Costs) addA64(o *aop) {
	switch o.kind {
	case aLdp, aLdr:
		c.Loads++
	case aStp, aStr:
		c.Stores++
	case aB, aBr, aRet, aCbz, aCbnz:
		c.Branches++
	}
}

func (c *Costs) addRV(o *rop) {
	switch o.kind {
	case rLoad:
		c.Loads++
	case rStore:
		c.Stores++
	case rBeq, rBne:
		c.Branches++
	case rJal, rJalr:
		if o.rd == 0 {
			c.Branches++
		}
	}
}

func (c *Costs) addS390(o *sop) {
	switch o.kind {
	case sLg, sLtg, sLmg:
		c.Loads++
	case sStg, sStmg:
		c.Stores++
	case sMvc, sXc:
		c.Loads++
		c.Stores++
	case sBrcl:
		if o.mask != 0 {
			c.Branches++
		}
	case sBcr:
		if o.mask != 0 && o.r2 != 0 {
			c.Branches++
		}
	}
}
