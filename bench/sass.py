"""Reading sm_90 SASS: instructions, their pipes, control flow, loops, and the
instructions a kernel's steady-state loop issues per trip.

This module knows nothing about cuact's kernels; static_model.py uses it to
predict how close each kernel can come to the memory-bandwidth limit. The
rules it applies to a loop body are the contract the predictions are read
against (README.md, "Static throughput model"):

- The steady-state loop of a vectorized path is a loop whose body holds both
  128-bit global loads and 128-bit global stores (the innermost such loop);
  for a kernel whose output elements are narrower than its inputs (fp8
  codes), 128-bit loads and global stores of any width.
- Inside it, every instruction on the counted path is counted once per trip,
  predicated ones included (a predicated-off instruction still issues).
- A BRA.DIV falls through: it is the compiler's convergence test before a
  warp-synchronous instruction (SHFL), and the fallback it jumps to runs
  only in a divergent warp (the kernels' shuffles run converged). The
  fallback code is left out of the control flow, and so out of every loop.
- At a conditional branch the counted path takes:
    * the side the row's call runs, when the predicate tests a kernel
      parameter's byte against zero and the caller gives that byte's value
      (e.g. the backward call from the saved output y sets the form's
      from_output; every other call clears it);
    * one side only, when the other is a slow path: it calls a subroutine
      (CALL, e.g. the IEEE-division slow path), or the branch predicate comes
      from a special-value test (a compare against +-INF, a NaN test, FCHK),
      whose common outcome is "finite, ordinary";
    * the aligned side of an alignment test (an ISETP of `x & (2^k - 1)`
      against zero);
    * the vectorized side, when only one side's own blocks hold 128-bit
      global accesses (the other is the scalar or narrower fallback);
    * the side of the wider stores, when both sides' own blocks only
      store (narrower than 128 bits) the same bytes: one vector stored
      whole or in halves (fp8 codes: 8 bytes in one access, or two 4-byte
      ones for a call whose streams are aligned to half an access);
    * the longer side of a branch whose predicate depends only on kernel
      parameters (uniform: one side runs, the worst is assumed), except
      that the row of a call without an optional output (dropout's mask)
      takes the side that stores nothing, when the other side's own blocks
      only store (narrower than 128 bits) and load nothing and the
      predicate is not a test of a parameter byte (the output's presence
      is its pointer tested against null; a flag byte such as a quantized
      output's `writes`, set by every call that stores, guards the
      output's own stores): those stores are that output's, which the
      call does not make;
    * both sides otherwise (a data-dependent branch such as a sign test: a
      divergent warp runs both).
- Inner loops in the body count their body once per trip unless the caller
  gives a trip count (the row model of row-wise kernels does).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

# ---------------------------------------------------------------- pipes

# Pipes of the model (README.md): per SM per clock, warp-instructions.
PIPE_RATES = {"issue": 4.0, "fma": 4.0, "imad": 2.0, "alu": 2.0, "xu": 0.5, "fp64": 2.0}

_FMA_OPS = {"FFMA", "FADD", "FMUL", "FFMA2", "FADD2", "FMUL2", "HFMA2", "HADD2", "HMUL2",
            "HMNMX2", "FSWZADD", "IMAD", "IMADSP", "IDP", "IDP4A", "DP4A", "DP2A"}
_ALU_OPS = {"FSETP", "FSEL", "FMNMX", "ISETP", "IADD3", "IADD", "LOP3", "LOP", "SHF", "SHL",
            "SHR", "MOV", "PRMT", "F2FP", "I2FP", "F2IP", "SEL", "LEA", "IABS", "IMNMX", "VIMNMX",
            "VIMNMX3", "FCHK", "PLOP3", "P2R", "R2P", "SGXT", "BMSK", "ISCADD", "CSET", "CSETP",
            "HSETP2", "HSET2", "FSET", "ISET", "VABSDIFF", "VABSDIFF4", "FMNMX3", "IMNMX3",
            "LEPC", "VOTE", "VOTEU"}
_XU_OPS = {"MUFU", "F2F", "I2F", "F2I", "FRND", "I2I", "POPC", "FLO", "BREV"}
_FP64_OPS = {"DADD", "DMUL", "DFMA", "DSETP", "DMNMX", "DSET", "DMMA"}


def base_opcode(op: str) -> str:
    return op.split(".")[0]


def is_fp64(op: str) -> bool:
    """FP64 arithmetic, or a conversion to or from FP64."""
    return base_opcode(op) in _FP64_OPS or ".F64" in op


def pipe_of(op: str) -> str:
    """The pipe an instruction occupies besides its issue slot: fma (imad is
    its slower half), alu, xu, fp64, or "other" (memory, control, uniform
    datapath), which costs an issue slot only."""
    b = base_opcode(op)
    if b in _FP64_OPS:
        return "fp64"
    if b == "IMAD" or b == "IMADSP":
        return "imad"
    if b in _FMA_OPS:
        return "fma"
    if b in _XU_OPS:
        return "xu"
    if b in _ALU_OPS:
        return "alu"
    return "other"


# ---------------------------------------------------------------- instructions


@dataclasses.dataclass
class Instr:
    addr: int
    pred: str  # "", "P0", "!P0", "UP1", "!UP1", "PT"
    op: str  # full opcode with modifiers, e.g. "LDG.E.128"
    args: str  # operands as written

    @property
    def base(self) -> str:
        return base_opcode(self.op)

    def operands(self) -> List[str]:
        return [a.strip() for a in _split_operands(self.args)]

    def branch_target(self) -> Optional[int]:
        if self.base not in ("BRA", "CALL", "BSSY", "JMP", "BRX", "BREAK"):
            return None
        m = re.search(r"0x([0-9a-fA-F]+)\s*$", self.args.strip())
        if m:
            return int(m.group(1), 16)
        m = re.search(r"\(?\.L_x_\d+\)?", self.args)
        return None

    @property
    def conditional(self) -> bool:
        return self.pred not in ("", "PT")

    def is_global_128(self, kind: str) -> bool:
        """kind: "LDG" or "STG"."""
        return self.base == kind and ".128" in self.op

    def is_global_access(self) -> bool:
        return self.base in ("LDG", "STG")


def _split_operands(args: str) -> List[str]:
    out, depth, cur = [], 0, ""
    for ch in args:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


_INSTR_RE = re.compile(
    r"/\*([0-9a-fA-F]{4,})\*/\s+(?:@(!?U?P[T0-7])\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*([^;]*);")
_FUNC_RE = re.compile(r"Function\s*:\s*(\S+)")


def parse_sass(text: str) -> Dict[str, List[Instr]]:
    """cuobjdump -sass output -> {mangled kernel name: instructions}."""
    funcs: Dict[str, List[Instr]] = {}
    current: Optional[List[Instr]] = None
    for line in text.splitlines():
        m = _FUNC_RE.search(line)
        if m:
            current = funcs.setdefault(m.group(1), [])
            continue
        if current is None:
            continue
        m = _INSTR_RE.search(line)
        if m:
            current.append(Instr(int(m.group(1), 16), m.group(2) or "", m.group(3), m.group(4).strip()))
    return funcs


def parse_res_usage(text: str) -> Dict[str, Dict[str, int]]:
    """cuobjdump -res-usage output -> {mangled name: {REG, STACK, SHARED, LOCAL, ...}}."""
    out: Dict[str, Dict[str, int]] = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"\s*Function\s+(\S+?):\s*$", line)
        if m:
            name = m.group(1)
            continue
        if name and "REG:" in line:
            out[name] = {k: int(v) for k, v in re.findall(r"([A-Z_\[\]0-9]+):(\d+)", line)}
            name = None
    return out


# sm_90 kernels read their parameters from constant bank 0 at this address
# (the offsets of cuobjdump -elf's EIATTR_KPARAM_INFO are relative to it).
PARAM_BASE = 0x210


def parse_params(elf_text: str) -> Dict[str, Dict[int, Tuple[int, int]]]:
    """cuobjdump -elf output -> {mangled name: {ordinal: (offset, size)}} of
    each kernel parameter (offsets from PARAM_BASE)."""
    out: Dict[str, Dict[int, Tuple[int, int]]] = {}
    section = None
    for line in elf_text.splitlines():
        m = re.search(r"\.nv\.info\.(\S+)", line)
        if m:
            section = m.group(1)
            continue
        v = re.search(r"Ordinal\s*:\s*0x([0-9a-fA-F]+)\s+Offset\s*:\s*0x([0-9a-fA-F]+)\s+"
                      r"Size\s*:\s*0x([0-9a-fA-F]+)", line)
        if section and v:
            out.setdefault(section, {})[int(v.group(1), 16)] = (int(v.group(2), 16), int(v.group(3), 16))
    return out


def parse_max_threads(elf_text: str) -> Dict[str, int]:
    """cuobjdump -elf output -> {mangled name: __launch_bounds__ threads}."""
    out: Dict[str, int] = {}
    section = None
    lines = elf_text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"\.nv\.info\.(\S+)", line)
        if m:
            section = m.group(1)
            continue
        if section and "EIATTR_MAX_THREADS" in line:
            for j in range(i + 1, min(i + 4, len(lines))):
                v = re.search(r"Value:\s*0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)", lines[j])
                if v:
                    out[section] = int(v.group(1), 16) * int(v.group(2), 16) * int(v.group(3), 16)
                    break
    return out


# ---------------------------------------------------------------- registers read and written

_REG_RE = re.compile(r"(?<![A-Za-z0-9_])(U?R)(\d+|Z)(?:\.(64|128|H0_H0|H1_H1|H0|H1|B\d|X\d|reuse))*")
_PRED_RE = re.compile(r"(?<![A-Za-z0-9_])!?(U?P)([0-7T])(?![A-Za-z0-9_])")

_NO_DEST_OPS = {"STG", "STS", "ST", "STL", "RED", "BRA", "EXIT", "BSSY", "BSYNC", "BAR", "CALL",
                "RET", "WARPSYNC", "NOP", "MEMBAR", "DEPBAR", "ERRBAR", "CCTL", "BREAK", "YIELD",
                "STSM", "SYNCS", "UCGABAR_ARV", "UCGABAR_WAIT", "BPT", "JMP", "BRX"}


def _width_of(op: str, default: int = 1) -> int:
    for tag, w in ((".128", 4), (".64", 2)):
        if tag in op:
            return w
    return default


def _regs_in(text: str, width: int = 1) -> Set[str]:
    regs = set()
    for m in _REG_RE.finditer(text):
        kind, num = m.group(1), m.group(2)
        if num == "Z":
            continue
        w = width
        if m.group(0).endswith(".64"):
            w = max(w, 2)
        n = int(num)
        for k in range(w):
            regs.add(f"{kind}{n + k}")
    return regs


def dest_and_sources(ins: Instr) -> Tuple[Set[str], Set[str]]:
    """Registers (R*, UR*, P*, UP*) an instruction writes and reads."""
    return _dest_and_sources(ins.pred, ins.op, ins.args)


@functools.lru_cache(maxsize=None)
def _dest_and_sources(pred: str, op: str, args: str) -> Tuple[frozenset, frozenset]:
    d, s = _dest_and_sources_uncached(Instr(0, pred, op, args))
    return frozenset(d), frozenset(s)


def _dest_and_sources_uncached(ins: Instr) -> Tuple[Set[str], Set[str]]:
    ops = ins.operands()
    dests: Set[str] = set()
    srcs: Set[str] = set()
    pred_src = ins.pred.lstrip("!")
    if pred_src and pred_src not in ("PT",):
        srcs.add(pred_src)
    if not ops:
        return dests, srcs
    if ins.base in _NO_DEST_OPS:
        for i, o in enumerate(ops):
            w = _width_of(ins.op) if (ins.base in ("STG", "STS", "ST") and i == len(ops) - 1) else 1
            srcs |= _regs_in(o, w)
            srcs |= {p.group(1) + p.group(2) for p in _PRED_RE.finditer(o) if p.group(2) != "T"}
        return dests, srcs
    # Predicate destinations come first (FSETP P0, P1, ...; ISETP P0, PT, ...).
    i = 0
    while i < len(ops) and re.fullmatch(r"!?U?P[T0-7]", ops[i]):
        if ops[i] not in ("PT", "UPT") and not ops[i].startswith("!"):
            dests.add(ops[i])
        i += 1
        if ins.base not in ("FSETP", "ISETP", "DSETP", "HSETP2", "PLOP3", "CSETP", "R2P", "VOTE",
                            "UISETP", "UPLOP3", "FCHK"):
            break
    if i < len(ops) and re.match(r"U?R", ops[i]) and ins.base not in ("FSETP", "ISETP", "DSETP", "FCHK"):
        width = _width_of(ins.op) if ins.base in ("LDG", "LDS", "LD", "LDL", "LDC", "ULDC") else 1
        if ins.base == "IMAD" and ".WIDE" in ins.op:
            width = 2
        if ins.base in ("LDG", "LDS", "LD") and ".64" in ins.op:
            width = 2
        dests |= _regs_in(ops[i].split(".")[0], width)
        if ".X" in ins.op or ins.base in ("IADD3", "LEA"):
            pass
        i += 1
    # Carry-out predicates of IADD3/LEA etc. sit after the destination register.
    while i < len(ops) and re.fullmatch(r"U?P[0-7]", ops[i]):
        dests.add(ops[i])
        i += 1
    for o in ops[i:]:
        srcs |= _regs_in(o)
        srcs |= {p.group(1) + p.group(2) for p in _PRED_RE.finditer(o) if p.group(2) != "T"}
    return dests, srcs


# ---------------------------------------------------------------- control flow


@dataclasses.dataclass
class Block:
    index: int
    instrs: List[Instr]
    succs: List[int] = dataclasses.field(default_factory=list)
    # Successor kinds, parallel to succs: "fall", "taken", "jump".
    kinds: List[str] = dataclasses.field(default_factory=list)

    @property
    def start(self) -> int:
        return self.instrs[0].addr

    @property
    def end(self) -> int:
        return self.instrs[-1].addr

    @property
    def last(self) -> Instr:
        return self.instrs[-1]


class Cfg:
    """Basic blocks of one function; block order is address order."""

    def __init__(self, instrs: Sequence[Instr]):
        self.instrs = list(instrs)
        by_addr = {ins.addr: i for i, ins in enumerate(self.instrs)}
        leaders = {0}
        for i, ins in enumerate(self.instrs):
            t = ins.branch_target() if ins.base in ("BRA", "JMP", "BRX", "BSSY", "BREAK") else None
            if t is not None and t in by_addr:
                leaders.add(by_addr[t])
            if ins.base in ("BRA", "EXIT", "RET", "CALL", "JMP", "BRX", "BREAK", "BPT"):
                if i + 1 < len(self.instrs):
                    leaders.add(i + 1)
        starts = sorted(leaders)
        self.blocks: List[Block] = []
        self.block_of_addr: Dict[int, int] = {}
        for bi, s in enumerate(starts):
            e = starts[bi + 1] if bi + 1 < len(starts) else len(self.instrs)
            blk = Block(bi, self.instrs[s:e])
            self.blocks.append(blk)
            for ins in blk.instrs:
                self.block_of_addr[ins.addr] = bi
        for blk in self.blocks:
            last = blk.last
            nxt = blk.index + 1 if blk.index + 1 < len(self.blocks) else None
            if last.op == "BRA.DIV":  # the converged warp falls through (module docstring)
                if nxt is not None:
                    blk.succs.append(nxt)
                    blk.kinds.append("fall")
            elif last.base in ("BRA", "JMP"):
                t = last.branch_target()
                tb = self.block_of_addr.get(t) if t is not None else None
                if last.conditional and nxt is not None:
                    blk.succs.append(nxt)
                    blk.kinds.append("fall")
                if tb is not None:
                    blk.succs.append(tb)
                    blk.kinds.append("taken" if last.conditional else "jump")
            elif last.base in ("EXIT", "RET", "BPT", "BRX"):
                if last.conditional and nxt is not None:
                    blk.succs.append(nxt)
                    blk.kinds.append("fall")
            elif nxt is not None:
                blk.succs.append(nxt)
                blk.kinds.append("fall")

    def preds(self) -> Dict[int, List[int]]:
        p: Dict[int, List[int]] = {b.index: [] for b in self.blocks}
        for b in self.blocks:
            for s in b.succs:
                p[s].append(b.index)
        return p


@dataclasses.dataclass
class Loop:
    header: int
    latches: List[int]
    body: Set[int]

    def contains(self, other: "Loop") -> bool:
        return other.body < self.body or (other.body == self.body and other.header != self.header)


def find_loops(cfg: Cfg) -> List[Loop]:
    """Natural loops, one per header (back edges: to a block at or before the
    source), among the blocks reachable from the entry."""
    preds = cfg.preds()
    reachable = {0}
    stack = [0]
    while stack:
        for s in cfg.blocks[stack.pop()].succs:
            if s not in reachable:
                reachable.add(s)
                stack.append(s)
    preds = {n: [p for p in ps if p in reachable] for n, ps in preds.items()}
    by_header: Dict[int, Loop] = {}
    for b in cfg.blocks:
        if b.index not in reachable:
            continue
        for s in b.succs:
            if cfg.blocks[s].start <= b.start:
                body = {s, b.index}
                stack = [b.index]
                while stack:
                    n = stack.pop()
                    if n == s:
                        continue
                    for p in preds[n]:
                        if p not in body:
                            body.add(p)
                            stack.append(p)
                loop = by_header.get(s)
                if loop:
                    loop.latches.append(b.index)
                    loop.body |= body
                else:
                    by_header[s] = Loop(s, [b.index], body)
    return sorted(by_header.values(), key=lambda l: cfg.blocks[l.header].start)


# ---------------------------------------------------------------- predicate provenance


def _definition_before(instrs: Sequence[Instr], index: int, reg: str) -> Optional[int]:
    for j in range(index - 1, -1, -1):
        d, _ = dest_and_sources(instrs[j])
        if reg in d:
            return j
    return None


_UNIFORM_SOURCE_OPS = {"LDC", "ULDC", "S2UR", "UMOV", "ULOP3", "UIADD3", "USHF", "UIMAD", "ULEA",
                       "UISETP", "USEL", "UPRMT", "UFLO", "UPOPC", "UBREV", "USGXT", "UBMSK",
                       "UPLOP3", "R2UR", "CS2R"}


def is_uniform_value(instrs: Sequence[Instr], index: int, reg: str, depth: int = 0,
                     seen: Optional[Set[Tuple[int, str]]] = None) -> bool:
    """Whether `reg`, as read by instruction `index`, depends only on kernel
    parameters and constants (the same value in every thread of the launch)."""
    if reg.startswith("U") or reg in ("RZ", "PT", "URZ", "UPT"):
        return True
    if depth > 16:
        return False
    seen = seen if seen is not None else set()
    key = (index, reg)
    if key in seen:
        return False
    seen.add(key)
    j = _definition_before(instrs, index, reg)
    if j is None:
        return False
    d = instrs[j]
    if d.base in ("S2R",):
        return "SR_CTAID" in d.args or "SR_NCTAID" in d.args
    if d.base in ("LDG", "LDS", "LD", "SHFL", "LDL", "ATOM", "ATOMS", "RED", "VOTE", "MATCH",
                  "REDUX", "LDSM"):
        return False
    if d.base in ("LDC", "ULDC") and "R" not in d.args.split("[")[-1].replace("]", ""):
        return True
    if d.pred and d.pred not in ("PT",):
        if not is_uniform_value(instrs, j, d.pred.lstrip("!"), depth + 1, seen):
            return False
    _, srcs = dest_and_sources(d)
    if d.base == "P2R":  # P2R Rd, PR, Rs, mask: also reads the predicates of the mask
        ops = d.operands()
        try:
            mask = int(ops[-1], 16)
        except (ValueError, IndexError):
            return False
        srcs = set(srcs) | {f"P{i}" for i in range(7) if mask >> i & 1}
    return all(is_uniform_value(instrs, j, s, depth + 1, seen) for s in srcs)


def special_value_sense(instrs: Sequence[Instr], index: int, pred: str) -> Optional[bool]:
    """For a predicate set by a special-value test, its value for ordinary
    finite data (True/False); None when it is not such a test."""
    j = _definition_before(instrs, index, pred)
    if j is None:
        return None
    d = instrs[j]
    ops = d.operands()
    if d.base == "FCHK":
        return False  # FCHK flags the division slow path
    if d.base not in ("FSETP", "DSETP"):
        return None
    # FSETP.CMP.BOOL Pd, Pd2, a, b, Pc: only a plain test (Pc = PT, first destination).
    if len(ops) < 5 or ops[0] != pred or ops[-1] not in ("PT", "!PT"):
        return None
    if ops[-1] == "!PT" and ".AND" in d.op:
        return None
    cmp = d.op.split(".")[1] if "." in d.op else ""
    a, b = ops[2], ops[3]
    inf = lambda s: "INF" in s.upper() or s.lower() in ("0x7f800000", "0xff800000")
    if cmp in ("NAN",):
        return False
    if cmp in ("NUM",):
        return True
    if inf(b) or inf(a):
        # A finite x against +-INF: ordered and unordered forms agree for finite x.
        neg = ("-INF" in (a + b).upper()) or "0xff800000" in (a + b).lower()
        x_left = inf(b)
        base = cmp.rstrip("U") if cmp.endswith("U") and cmp not in ("LTU", "GTU") else cmp
        base = {"LTU": "LT", "GTU": "GT", "LEU": "LE", "GEU": "GE", "EQU": "EQ", "NEU": "NE"}.get(base, base)
        # Finite x vs +INF: x < inf. Finite x vs -INF: x > -inf.
        rel = ("LT" if not neg else "GT") if x_left else ("GT" if not neg else "LT")
        truth = {"LT": {"LT": True, "LE": True, "GT": False, "GE": False, "EQ": False, "NE": True},
                 "GT": {"LT": False, "LE": False, "GT": True, "GE": True, "EQ": False, "NE": True}}
        return truth[rel].get(base)
    if base_opcode(d.op) == "FSETP" and a == b and cmp in ("NEU", "EQU"):
        return cmp == "EQU"  # x != x: NaN test (unordered)
    if base_opcode(d.op) == "FSETP" and a == b and cmp in ("EQ", "NE"):
        return cmp == "EQ"
    return None


def alignment_sense(instrs: Sequence[Instr], index: int, pred: str) -> Optional[bool]:
    """For a predicate set by an alignment test (ISETP.EQ/NE of `x & (2^k-1)`
    with zero), its value when x is aligned; None otherwise."""
    j = _definition_before(instrs, index, pred)
    if j is None:
        return None
    d = instrs[j]
    ops = d.operands()
    # LOP3.LUT P, RZ, x, mask, RZ, 0xc0: P = (x & mask) != 0, false when aligned.
    if d.base == "LOP3" and len(ops) >= 6 and ops[0] == pred and ops[1] == "RZ":
        masks = [o for o in ops[2:5] if re.fullmatch(r"0x[0-9a-fA-F]+", o)]
        if masks and ops[5].lower() == "0xc0":
            mask = int(masks[0], 16)
            if 0 < mask <= 0xff and (mask & (mask + 1)) == 0:
                return False
        return None
    if d.base != "ISETP" or len(ops) < 5 or ops[0] != pred or ops[-1] != "PT":
        return None
    cmp = d.op.split(".")[1]
    if cmp not in ("EQ", "NE"):
        return None
    val, other = ops[2], ops[3]
    if other not in ("RZ", "0x0"):
        val, other = other, val
    if other not in ("RZ", "0x0") or not re.fullmatch(r"R\d+", val):
        return None
    k = _definition_before(instrs, j, val)
    if k is None:
        return None
    m = instrs[k]
    if m.base != "LOP3" or ".LUT" not in m.op:
        return None
    mops = m.operands()
    masks = [o for o in mops[1:4] if re.fullmatch(r"0x[0-9a-fA-F]+", o)]
    if not masks:
        return None
    mask = int(masks[0], 16)
    if mask == 0 or mask > 0xff or (mask & (mask + 1)) != 0:
        return None
    return cmp == "EQ"


_CBANK_RE = re.compile(r"c\[0x0\]\[(0x[0-9a-fA-F]+)\]")


def param_byte_test(instrs: Sequence[Instr], index: int, pred: str) -> Optional[Tuple[int, bool]]:
    """For a predicate set by a test of a kernel-parameter byte (a bool flag)
    against zero (ISETP/UISETP .EQ/.NE of the byte's U8 constant load):
    (the byte's constant-bank address, whether the predicate is true when
    the byte is set); None for any other predicate."""
    j = _definition_before(instrs, index, pred)
    if j is None:
        return None
    d = instrs[j]
    ops = d.operands()
    if d.base not in ("ISETP", "UISETP") or len(ops) != 5 or ops[0] != pred or ops[-1] not in ("PT", "UPT"):
        return None
    cmp = d.op.split(".")[1]
    zero = ("RZ", "URZ", "0x0")
    reg = ops[3] if ops[2] in zero else ops[2] if ops[3] in zero else None
    if cmp not in ("EQ", "NE") or ".AND" not in d.op or reg is None:
        return None
    k = _definition_before(instrs, j, reg)
    load = instrs[k] if k is not None else None
    m = _CBANK_RE.fullmatch(load.operands()[-1]) if load and load.op in ("LDC.U8", "ULDC.U8") else None
    if m is None:
        return None
    return int(m.group(1), 16), cmp == "NE"


def param_byte_sense(instrs: Sequence[Instr], index: int, pred: str,
                     fixed: Dict[int, int]) -> Optional[bool]:
    """For a predicate set by a test of a kernel-parameter byte against zero
    (param_byte_test), its value when the byte holds fixed[its constant-bank
    address]; None for any other predicate or a byte not in fixed."""
    t = param_byte_test(instrs, index, pred)
    if t is None or t[0] not in fixed:
        return None
    return (fixed[t[0]] != 0) == t[1]


# ---------------------------------------------------------------- the counted path


@dataclasses.dataclass
class PathCount:
    counts: Dict[str, float]  # pipe -> instructions per trip (plus "issue")
    ldg128: float
    stg128: float
    ldg128_by_base: Dict[str, float]
    stg128_by_base: Dict[str, float]
    lds_bytes: float
    fp64_ops: List[str]
    blocks: Set[int]
    multipliers: Dict[int, float]
    notes: List[str]
    local_ops: int


def _region(cfg: Cfg, start: int, allowed: Set[int], blocked_edges: Set[Tuple[int, int]]) -> Set[int]:
    seen = set()
    stack = [start]
    while stack:
        n = stack.pop()
        if n in seen or n not in allowed:
            continue
        seen.add(n)
        for s in cfg.blocks[n].succs:
            if (n, s) not in blocked_edges:
                stack.append(s)
    return seen


def _straight_into_call(cfg: Cfg, start: int, stop: Set[int]) -> bool:
    """Whether the blocks from `start`, followed while each has one successor
    and before reaching `stop` (the other side's blocks), reach a CALL."""
    n, steps = start, 0
    while n not in stop and steps < 64:
        blk = cfg.blocks[n]
        if any(i.base == "CALL" for i in blk.instrs):
            return True
        if len(blk.succs) != 1:
            return False
        n, steps = blk.succs[0], steps + 1
    return False


def _has(cfg: Cfg, blocks: Iterable[int], pred) -> bool:
    return any(pred(ins) for b in blocks for ins in cfg.blocks[b].instrs)


def store_bytes(ins: Instr) -> int:
    """Bytes one global store writes (STG.E: 4; .U8/.S8: 1; .U16/.S16: 2; .64: 8; .128: 16)."""
    for tag, n in ((".128", 16), (".64", 8), (".U16", 2), (".S16", 2), (".U8", 1), (".S8", 1)):
        if tag in ins.op:
            return n
    return 4


def _only_narrow_stores(cfg: Cfg, blocks: Iterable[int]) -> bool:
    ins = [i for b in blocks for i in cfg.blocks[b].instrs if i.is_global_access()]
    return bool(ins) and all(i.base == "STG" and ".128" not in i.op for i in ins)


def _wider_stores(cfg: Cfg, a: Iterable[int], b: Iterable[int]) -> Optional[int]:
    """0 or 1 for the side (a or b) that writes the same bytes as the other
    in wider stores, when both sides' own blocks access global memory only
    to store, narrower than 128 bits (one vector stored whole or in halves:
    the choice of an aligned call); None otherwise."""
    def stores(blocks):
        ins = [i for n in blocks for i in cfg.blocks[n].instrs if i.is_global_access()]
        if not ins or any(i.base != "STG" or ".128" in i.op for i in ins):
            return None
        return sum(store_bytes(i) for i in ins), max(store_bytes(i) for i in ins)
    sa, sb = stores(a), stores(b)
    if sa is None or sb is None or sa[0] != sb[0] or sa[1] == sb[1]:
        return None
    return 0 if sa[1] > sb[1] else 1


def counted_path(cfg: Cfg, loop: Loop, inner_trips: Optional[Dict[int, float]] = None,
                 optional_output_absent: bool = False,
                 fixed: Optional[Dict[int, int]] = None) -> PathCount:
    """The blocks of `loop` a steady-state trip runs, by the rules in the
    module docstring, and their instruction counts per trip.
    optional_output_absent: the row is a call without the kernel's optional
    output (a uniform branch into only narrow stores is not taken).
    fixed: kernel-parameter bytes the row's call fixes (constant-bank
    address -> value); a branch on one takes the side the call runs."""
    inner_trips = inner_trips or {}
    body = loop.body
    header = loop.header
    loops = [l for l in find_loops(cfg) if l.body < body]
    # Forward edges only: back edges of this loop and of inner loops are cut.
    back_edges = set()
    for l in [loop] + loops:
        for latch in l.latches:
            back_edges.add((latch, l.header))
    notes: List[str] = []

    def forward_succs(n: int) -> List[Tuple[int, str]]:
        b = cfg.blocks[n]
        return [(s, k) for s, k in zip(b.succs, b.kinds) if s in body and (n, s) not in back_edges]

    # Inner loop exits: an inner loop's blocks are all on the path once its
    # header is; we let the walk enter them through forward edges.
    chosen: Set[int] = set()
    stack = [header]
    instrs_all = cfg.instrs
    index_of = {ins.addr: i for i, ins in enumerate(instrs_all)}
    while stack:
        n = stack.pop()
        if n in chosen:
            continue
        chosen.add(n)
        blk = cfg.blocks[n]
        succs = forward_succs(n)
        last = blk.last
        if len(succs) == 2 and last.base == "BRA" and last.conditional:
            fall = [s for s, k in succs if k == "fall"]
            taken = [s for s, k in succs if k == "taken"]
            if not fall or not taken:
                stack.extend(s for s, _ in succs)
                continue
            fall, taken = fall[0], taken[0]
            allowed = body
            ra = _region(cfg, fall, allowed, back_edges)
            rb = _region(cfg, taken, allowed, back_edges)
            only_a, only_b = ra - rb, rb - ra
            neg = last.pred.startswith("!")
            pred = last.pred.lstrip("!")
            idx = index_of[last.addr]
            pick: Optional[str] = None
            # 0. a parameter the call fixes: the side the call runs
            value = param_byte_sense(instrs_all, idx, pred, fixed) if fixed else None
            if value is not None:
                pick = "taken" if value != neg else "fall"
                notes.append(f"branch at {last.addr:#x} on a parameter the call fixes: its side counted")
            # 1. slow paths: a side that runs straight into a subroutine call
            calls_a = _straight_into_call(cfg, fall, rb)
            calls_b = _straight_into_call(cfg, taken, ra)
            if pick is None and calls_a != calls_b:
                pick = "taken" if calls_a else "fall"
            if pick is None:
                sense = special_value_sense(instrs_all, idx, pred)
                if sense is None:
                    sense = alignment_sense(instrs_all, idx, pred)
                if sense is not None:
                    taken_when_common = sense != neg
                    pick = "taken" if taken_when_common else "fall"
            if pick is None:
                vec = lambda i: (i.is_global_128("LDG") or i.is_global_128("STG"))
                narrow = lambda i: i.is_global_access() and ".128" not in i.op
                va, vb = _has(cfg, only_a, vec), _has(cfg, only_b, vec)
                if va != vb and (_has(cfg, only_b if va else only_a, narrow) or True):
                    pick = "fall" if va else "taken"
            if pick is None:
                wide = _wider_stores(cfg, only_a, only_b)
                if wide is not None:
                    pick = "fall" if wide == 0 else "taken"
                    notes.append(f"branch at {last.addr:#x}: the wider stores of the same bytes counted")
            # (An optional output's presence is its pointer tested against
            # null; a flag byte, such as a quantized output's `writes`, which
            # every storing call sets, is not that test.)
            if pick is None and optional_output_absent and is_uniform_value(instrs_all, idx, pred) \
                    and param_byte_test(instrs_all, idx, pred) is None:
                stores_a, stores_b = _only_narrow_stores(cfg, only_a), _only_narrow_stores(cfg, only_b)
                none = lambda r: not _has(cfg, r, lambda i: i.is_global_access())
                if stores_a and none(only_b):
                    pick = "taken"
                elif stores_b and none(only_a):
                    pick = "fall"
                if pick is not None:
                    notes.append(f"uniform branch at {last.addr:#x}: the absent output's stores skipped")
            if pick is None and is_uniform_value(instrs_all, idx, pred):
                size = lambda r: sum(len(cfg.blocks[x].instrs) for x in r)
                pick = "fall" if size(only_a) >= size(only_b) else "taken"
                notes.append(f"uniform branch at {last.addr:#x}: longer side counted")
            if pick == "fall":
                stack.append(fall)
            elif pick == "taken":
                stack.append(taken)
            else:
                stack.extend([fall, taken])
        else:
            stack.extend(s for s, _ in succs)
    # Multipliers: inner loops' trip counts (default 1).
    mult = {n: 1.0 for n in chosen}
    for l in loops:
        if l.header not in chosen:
            continue
        t = inner_trips.get(l.header)
        if t is None:
            t = 1.0
            notes.append(f"inner loop at {cfg.blocks[l.header].start:#x} counted once per trip")
        for n in l.body & chosen:
            mult[n] *= t
    counts = {k: 0.0 for k in ("issue", "fma", "imad", "alu", "xu", "fp64", "other")}
    ldg = stg = 0.0
    ldg_b: Dict[str, float] = {}
    stg_b: Dict[str, float] = {}
    lds_bytes = 0.0
    fp64 = []
    local_ops = 0
    for n in sorted(chosen):
        m = mult[n]
        for ins in cfg.blocks[n].instrs:
            if ins.base == "NOP":
                continue
            counts["issue"] += m
            counts[pipe_of(ins.op)] += m
            if is_fp64(ins.op):
                fp64.append(f"{ins.addr:#x} {ins.op}")
            if ins.base in ("LDL", "STL"):
                local_ops += 1
            if ins.is_global_128("LDG"):
                ldg += m
                base = _address_base(ins.args)
                ldg_b[base] = ldg_b.get(base, 0.0) + m
            if ins.is_global_128("STG"):
                stg += m
                base = _address_base(ins.args)
                stg_b[base] = stg_b.get(base, 0.0) + m
            if ins.base == "LDS":
                lds_bytes += m * 4 * _width_of(ins.op)
    return PathCount(counts, ldg, stg, ldg_b, stg_b, lds_bytes, fp64, chosen, mult, notes, local_ops)


def _address_base(args: str) -> str:
    """The base register of a global access: R18 in `desc[UR8][R18.64+0x10]`."""
    brackets = re.findall(r"\[([^\]]*)\]", args)
    m = re.match(r"\s*(U?R\d+)", brackets[-1]) if brackets else None
    return m.group(1) if m else "?"


def loads_in_flight(cfg: Cfg, blocks: Set[int]) -> Tuple[int, int]:
    """On the counted path in address order: (16-byte global loads issued
    before the first instruction that reads the result of one of them, all
    16-byte global loads on the path)."""
    seq = [ins for n in sorted(blocks) for ins in cfg.blocks[n].instrs]
    issued = 0
    pending: Set[str] = set()
    total = sum(1 for ins in seq if ins.is_global_128("LDG"))
    for ins in seq:
        d, s = dest_and_sources(ins)
        if pending and (s & pending):
            return issued, total
        if ins.is_global_128("LDG"):
            issued += 1
            pending |= d
    return issued, total


def steady_state_loops(cfg: Cfg, narrow_stores: bool = False) -> List[Loop]:
    """Innermost loops whose body holds both 128-bit global loads and stores
    (narrow_stores: 128-bit loads and global stores of any width, for a
    kernel whose output elements are narrower than its inputs, e.g. fp8
    codes written from fp32 inputs: 4 bytes for 16 read)."""
    loops = find_loops(cfg)

    def has_vec(l: Loop) -> bool:
        ins = [i for b in l.body for i in cfg.blocks[b].instrs]
        stores = (lambda i: i.base == "STG") if narrow_stores else (lambda i: i.is_global_128("STG"))
        return any(i.is_global_128("LDG") for i in ins) and any(stores(i) for i in ins)

    cands = [l for l in loops if has_vec(l)]
    return [l for l in cands if not any(o is not l and o.body < l.body for o in cands)]


def inner_loops(cfg: Cfg, loop: Loop) -> List[Loop]:
    """Loops nested directly or deeper inside `loop`, outermost first."""
    return [l for l in find_loops(cfg) if l.body < loop.body]
