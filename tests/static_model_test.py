"""Tests of the static throughput model (bench/sass.py, bench/static_model.py)
on hand-written SASS whose counts and predicted fractions were worked out
by hand. Run by CTest (python3 -m unittest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import sass  # noqa: E402
import static_model  # noqa: E402


def function(lines, name="kernel"):
    """cuobjdump -sass text of one function: addresses 0x0, 0x10, ..."""
    out = [f"\t\tFunction : {name}"]
    for i, text in enumerate(lines):
        out.append(f"        /*{16 * i:04x}*/                   {text} ;   /* 0x000 */")
    return "\n".join(out) + "\n"


def loop_path(lines):
    instrs = sass.parse_sass(function(lines))["kernel"]
    cfg = sass.Cfg(instrs)
    loops = sass.steady_state_loops(cfg)
    assert len(loops) == 1, loops
    return cfg, loops[0], sass.counted_path(cfg, loops[0])


def addr(i):
    return f"0x{16 * i:x}"


class PipesAndPrediction(unittest.TestCase):
    # A vectorized fp32 loop: 64 MUFU, 2 FFMA, 1 IMAD, 1 ISETP per trip of one
    # 16-byte pack (4 elements), plus LDG, STG and BRA.
    LOOP = (["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]"]
            + ["MUFU.EX2 R4, R4"] * 64
            + ["FFMA R5, R5, R5, 1", "FADD R6, R6, R6", "IMAD.WIDE.U32 R2, R0, 0x10, R2",
               "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
               f"@!P0 BRA {addr(1)}", "EXIT"])

    def test_counts_per_pipe(self):
        _, _, p = loop_path(self.LOOP)
        self.assertEqual(p.counts["issue"], 64 + 2 + 1 + 1 + 3)
        self.assertEqual(p.counts["xu"], 64)
        self.assertEqual(p.counts["fma"], 2)
        self.assertEqual(p.counts["imad"], 1)
        self.assertEqual(p.counts["alu"], 1)
        self.assertEqual(p.counts["other"], 3)
        self.assertEqual((p.ldg128, p.stg128), (1, 1))

    def test_fraction_by_hand(self):
        # Per element: 16 XU instructions. XU issues 0.5 warp-instructions per
        # SM per clock: 16 / 0.5 / 32 = 1 SM-cycle per element, so 132 SMs at
        # 1.98 GHz do 2.6136e11 elements/s; at 8 bytes per element (fp32
        # forward) that is 2.0909e12 B/s: 0.6970 of 3.0 TB/s, 0.4863 of 4.3 TB/s.
        _, _, p = loop_path(self.LOOP)
        per = {k: v / 4 for k, v in p.counts.items()}
        h100, pipe = static_model.predict(per, 8, static_model.GPUS[0])
        h200, _ = static_model.predict(per, 8, static_model.GPUS[1])
        self.assertEqual(pipe, "xu")
        self.assertAlmostEqual(h100, 0.69696, places=4)
        self.assertAlmostEqual(h200, 0.48626, places=4)

    def test_memory_bound_is_capped_at_one(self):
        f, pipe = static_model.predict({"issue": 4, "fma": 2}, 8, static_model.GPUS[1])
        self.assertEqual((f, pipe), (1.0, "memory"))

    def test_imad_half_rate(self):
        # 40 IMAD and 40 FFMA per element: FMA pipe (80 / 4 = 20) and IMAD (40 / 2
        # = 20) tie with issue (80 / 4 = 20 cycles per 32 elements).
        f, pipe = static_model.predict({"issue": 80, "fma": 40, "imad": 40}, 2, static_model.GPUS[1])
        elems = 132 * 1.98e9 / (20 / 32)
        self.assertAlmostEqual(f, elems * 2 / 4.3e12, places=6)

    def test_resident_threads(self):
        # 40 registers: 1280 per warp (5 units of 256); 51 warps fit 65536
        # registers: 6 blocks of 256 threads (8 warps) = 1536 threads.
        self.assertEqual(static_model.resident_threads(static_model.GPUS[0], 40, 256), 1536)
        self.assertEqual(static_model.resident_threads(static_model.GPUS[0], 32, 256), 2048)
        self.assertEqual(static_model.resident_threads(static_model.GPUS[0], 123, 128), 512)


class Branches(unittest.TestCase):
    def body(self, middle):
        return (["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]"] + middle
                + ["ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                   f"@!P0 BRA {addr(1)}", "EXIT"])

    def test_divergent_branch_counts_both_sides(self):
        # sign test: 5 FMUL on one side (and its jump), 3 FADD on the other.
        middle = ["FSETP.GT.AND P1, PT, R4, RZ, PT", f"@P1 BRA {addr(2 + 1 + 1 + 5 + 1)}"] + \
                 ["FMUL R5, R5, R5"] * 5 + [f"BRA {addr(2 + 2 + 5 + 1 + 3)}"] + ["FADD R6, R6, R6"] * 3
        _, _, p = loop_path(self.body(middle))
        self.assertEqual(p.counts["fma"], 8)
        self.assertEqual(p.counts["issue"], 2 + 2 + 5 + 1 + 3 + 3 - 1)  # S2R is outside the loop

    def test_special_value_branch_takes_the_ordinary_side(self):
        def fma_count(test, branch):
            middle = [test, f"{branch} BRA {addr(2 + 2 + 4)}"] + ["FMUL R5, R5, R5"] * 4
            return loop_path(self.body(middle))[2].counts["fma"]
        # if (|x| == inf) skip the work: the finite side (fall through) counts.
        self.assertEqual(fma_count("FSETP.NEU.AND P1, PT, |R4|, +INF , PT", "@!P1"), 4)
        # the same test read the other way: branch (skip) when finite.
        self.assertEqual(fma_count("FSETP.NEU.AND P1, PT, |R4|, +INF , PT", "@P1"), 0)
        # if (x is NaN) skip: the FMULs are the ordinary side.
        self.assertEqual(fma_count("FSETP.NAN.AND P1, PT, R4, R4, PT", "@P1"), 4)
        # if (x is not NaN) skip: the FMULs are the NaN side.
        self.assertEqual(fma_count("FSETP.NAN.AND P1, PT, R4, R4, PT", "@!P1"), 0)
        # x != x, an unordered compare: true only for NaN.
        self.assertEqual(fma_count("FSETP.NEU.AND P1, PT, R4, R4, PT", "@P1"), 4)

    def test_division_slow_path_is_excluded(self):
        # FCHK flags the slow path; the call and its argument moves are skipped.
        middle = ["MUFU.RCP R9, R5", "FFMA R6, R9, R6, RZ", "FCHK P1, R6, R5",
                  f"@!P1 BRA {addr(2 + 3 + 1 + 3)}", "MOV R12, R6", "MOV R13, R5",
                  f"CALL.REL.NOINC {addr(40)}"]
        _, _, p = loop_path(self.body(middle))
        self.assertEqual(p.counts["fma"], 1)
        self.assertEqual(p.counts["xu"], 1)
        self.assertEqual(p.counts["alu"], 2)  # FCHK, ISETP; not the MOVs

    def test_uniform_branch_counts_the_longer_side(self):
        middle = ["LDC R9, c[0x0][0x210]", "ISETP.NE.AND P1, PT, R9, RZ, PT",
                  f"@P1 BRA {addr(2 + 3 + 2 + 1)}"] + ["FMUL R5, R5, R5"] * 2 + \
                 [f"BRA {addr(2 + 3 + 3 + 6)}"] + ["FADD R6, R6, R6"] * 6
        _, _, p = loop_path(self.body(middle))
        self.assertEqual(p.counts["fma"], 6)

    def test_absent_optional_output_skips_its_stores(self):
        # A uniform branch around two byte stores (a mask the call may not
        # write): counted for a call with the mask, skipped for one without.
        middle = ["LDC.64 R12, c[0x0][0x220]", "ISETP.NE.U32.AND P1, PT, R12, RZ, PT",
                  f"@!P1 BRA {addr(2 + 3 + 3)}", "STG.E.U8 desc[UR4][R12.64], R5",
                  "STG.E.U8 desc[UR4][R12.64+0x1], R6", "FMUL R7, R7, R7"]
        lines = self.body(middle)
        instrs = sass.parse_sass(function(lines))["kernel"]
        cfg = sass.Cfg(instrs)
        loop = sass.steady_state_loops(cfg)[0]
        with_mask = sass.counted_path(cfg, loop)
        without = sass.counted_path(cfg, loop, optional_output_absent=True)
        self.assertEqual(with_mask.counts["issue"] - without.counts["issue"], 3)
        self.assertEqual(without.counts["fma"], 0)

    def test_a_predicate_saved_by_p2r_keeps_its_provenance(self):
        # P2R R2, PR, RZ, 0x4 packs P2 into R2: uniform only when P2 is (a
        # thread's second row, tested through R2, is not).
        def uniform(p2_source):
            lines = ["S2R R0, SR_TID.X", "LDC R9, c[0x0][0x210]", p2_source, "P2R R2, PR, RZ, 0x4",
                     "ISETP.NE.AND P0, PT, R2, RZ, PT", "EXIT"]
            instrs = sass.parse_sass(function(lines))["kernel"]
            return sass.is_uniform_value(instrs, 5, "P0")
        self.assertFalse(uniform("ISETP.GE.AND P2, PT, R0, R9, PT"))
        self.assertTrue(uniform("ISETP.GE.AND P2, PT, R9, 0x10, PT"))

    def test_vectorized_side_of_an_alignment_choice(self):
        # Aligned: one 128-bit load; otherwise four scalar loads.
        lines = ["S2R R0, SR_TID.X", "LOP3.LUT R9, R2, 0xf, RZ, 0xc0, !PT",
                 "ISETP.NE.AND P1, PT, R9, RZ, PT", f"@P1 BRA {addr(7)}",
                 "LDG.E.128 R4, desc[UR4][R2.64]", "FMUL R4, R4, R4", f"BRA {addr(12)}",
                 "LDG.E R4, desc[UR4][R2.64]", "LDG.E R5, desc[UR4][R2.64+0x4]",
                 "LDG.E R6, desc[UR4][R2.64+0x8]", "LDG.E R7, desc[UR4][R2.64+0xc]",
                 "FADD R4, R4, R4", "ISETP.GE.AND P0, PT, R2, R8, PT",
                 "STG.E.128 desc[UR4][R10.64], R4", f"@!P0 BRA {addr(1)}", "EXIT"]
        _, _, p = loop_path(lines)
        self.assertEqual(p.ldg128, 1)
        self.assertEqual(p.counts["fma"], 1)


class ConvergedShuffles(unittest.TestCase):
    def test_bra_div_counts_the_converged_side(self):
        # The compiler's convergence test before a shuffle: BRA.DIV to a
        # fallback (WARPSYNC.COLLECTIVE, SHFL, ENDCOLLECTIVE, then back), the
        # fall-through is the plain SHFL. Counted: the converged side only,
        # and the fallback's jump back makes no loop.
        #  0 S2R  1 LDG  2 BRA.DIV->9  3 SHFL  4 FADD  5 ISETP  6 STG  7 @!P0 BRA->1  8 EXIT
        #  9 WARPSYNC 10 SHFL 11 ENDCOLLECTIVE 12 MOV 13 BRA->4
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]",
                 f"BRA.DIV UR4, {addr(9)}", "SHFL.BFLY PT, R9, R4, 0x1, 0x1f", "FADD R4, R4, R9",
                 "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                 f"@!P0 BRA {addr(1)}", "EXIT",
                 f"WARPSYNC.COLLECTIVE R12, {addr(11)}", "SHFL.BFLY P1, R9, R4, 0x1, 0x1f",
                 "ENDCOLLECTIVE", "MOV R9, R9", f"BRA {addr(4)}"]
        _, _, p = loop_path(lines)
        # LDG, BRA.DIV, SHFL, FADD, ISETP, STG, BRA: 7 issued per trip.
        self.assertEqual(p.counts["issue"], 7)
        self.assertEqual(len(sass.find_loops(sass.Cfg(sass.parse_sass(function(lines))["kernel"]))), 1)


class AlignmentFromLop3(unittest.TestCase):
    def test_a_predicate_set_by_lop3_is_an_alignment_test(self):
        # LOP3.LUT P1, RZ, x, 0x3, RZ, 0xc0: P1 = (x & 3) != 0, false when
        # aligned: the branch to the unaligned path is not taken.
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]",
                 "LOP3.LUT P1, RZ, R9, 0x3, RZ, 0xc0, !PT", f"@P1 BRA {addr(2 + 2 + 3 + 1)}",
                 "FMUL R4, R4, R4", "FMUL R5, R5, R5", f"BRA {addr(2 + 2 + 3 + 1 + 6)}",
                 ] + ["FADD R6, R6, R6"] * 6 + [
                 "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                 f"@!P0 BRA {addr(1)}", "EXIT"]
        _, _, p = loop_path(lines)
        self.assertEqual(p.counts["fma"], 2)


class InnerLoopTrips(unittest.TestCase):
    def test_given_trip_counts_multiply_the_inner_body(self):
        # An inner loop of 3 FFMA and its branch, run 4 times per outer trip.
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]"] + \
                ["FFMA R5, R5, R5, 1"] * 3 + ["ISETP.NE.AND P1, PT, R9, RZ, PT", f"@P1 BRA {addr(2)}"] + \
                ["ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                 f"@!P0 BRA {addr(1)}", "EXIT"]
        cfg, loop, once = loop_path(lines)
        inner = sass.inner_loops(cfg, loop)
        self.assertEqual(len(inner), 1)
        four = sass.counted_path(cfg, loop, {inner[0].header: 4.0})
        self.assertEqual(once.counts["fma"], 3)
        self.assertEqual(four.counts["fma"], 12)
        self.assertEqual(four.counts["alu"], 4 + 1)

    def test_philox_loops_are_recognised_by_their_multipliers(self):
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]",
                 "IMAD.WIDE.U32 R12, R13, -0x2daee0ad, RZ", "LOP3.LUT R14, R12, R15, R16, 0x96, !PT",
                 "ISETP.NE.AND P1, PT, R9, RZ, PT", f"@P1 BRA {addr(2)}",
                 "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                 f"@!P0 BRA {addr(1)}", "EXIT"]
        cfg, loop, _ = loop_path(lines)
        inner = sass.inner_loops(cfg, loop)
        self.assertTrue(static_model.philox_loop(cfg, inner[0]))


class LoadsInFlight(unittest.TestCase):
    def test_serialized_loads(self):
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]", "FMUL R4, R4, R4",
                 "LDG.E.128 R12, desc[UR4][R2.64+0x10]", "FMUL R12, R12, R12",
                 "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                 "STG.E.128 desc[UR4][R10.64+0x10], R12", f"@!P0 BRA {addr(1)}", "EXIT"]
        cfg, _, p = loop_path(lines)
        self.assertEqual(sass.loads_in_flight(cfg, p.blocks), (1, 2))

    def test_independent_loads(self):
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]",
                 "LDG.E.128 R12, desc[UR4][R2.64+0x10]", "FMUL R4, R4, R4", "FMUL R12, R12, R12",
                 "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                 "STG.E.128 desc[UR4][R10.64+0x10], R12", f"@!P0 BRA {addr(1)}", "EXIT"]
        cfg, _, p = loop_path(lines)
        self.assertEqual(sass.loads_in_flight(cfg, p.blocks), (2, 2))

    def test_a_load_into_the_address_of_the_next_is_consumed(self):
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]",
                 "LDG.E.128 R12, desc[UR4][R4.64]", "FMUL R12, R12, R12",
                 "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R12",
                 f"@!P0 BRA {addr(1)}", "EXIT"]
        cfg, _, p = loop_path(lines)
        self.assertEqual(sass.loads_in_flight(cfg, p.blocks), (1, 2))


class MiddlePasses(unittest.TestCase):
    def test_both_passes_over_dim_are_summed(self):
        # A tile loop around pass 1 (a 16-byte load, 2 FFMA, its compare and
        # branch: 5 instructions a trip) and pass 2 (a load, an FMUL, a store,
        # its compare and branch: 5): 10 issue slots a trip of one pack, 2 FFMA
        # + 1 FMUL on the FMA pipe, 2 compares on the ALU pipe.
        lines = ["S2R R0, SR_TID.X", "IADD3 R1, R1, 0x1, RZ",
                 "LDG.E.128 R4, desc[UR4][R2.64]", "FFMA R5, R4, R4, R5", "FFMA R6, R5, R5, R6",
                 "ISETP.GE.AND P0, PT, R2, R8, PT", f"@!P0 BRA {addr(2)}",
                 "LDG.E.128 R4, desc[UR4][R2.64]", "FMUL R4, R4, R6",
                 "STG.E.128 desc[UR4][R10.64], R4", "ISETP.GE.AND P1, PT, R10, R8, PT",
                 f"@!P1 BRA {addr(7)}",
                 "ISETP.GE.AND P2, PT, R1, R9, PT", f"@!P2 BRA {addr(1)}", "EXIT"]
        cfg = sass.Cfg(sass.parse_sass(function(lines))["kernel"])
        loop, path, in_flight = static_model.middle_passes(cfg)
        self.assertIsNotNone(loop)
        self.assertEqual(cfg.blocks[loop.header].start, 16 * 7)  # pass 2: the loop that stores
        self.assertEqual(path.counts["issue"], 10)
        self.assertEqual(path.counts["fma"], 3)
        self.assertEqual(path.counts["alu"], 2)
        self.assertEqual(in_flight, (1, 1))

    def test_a_single_pass_is_not_a_middle_kernel(self):
        lines = ["S2R R0, SR_TID.X", "LDG.E.128 R4, desc[UR4][R2.64]", "FMUL R4, R4, R4",
                 "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
                 f"@!P0 BRA {addr(1)}", "EXIT"]
        cfg = sass.Cfg(sass.parse_sass(function(lines))["kernel"])
        self.assertEqual(static_model.middle_passes(cfg)[0], None)


class StreamingPasses(unittest.TestCase):
    # A row loop around the streaming kernels' two passes over the row:
    #  0 S2R (entry)   1 IADD3 (row loop)
    #  2 LDG 3 FFMA 4 FMNMX 5 ISETP 6 @!P0 BRA->2          pass 1: 5 a trip of one pack
    #  7 SHFL 8 FADD                                        the row's reduction
    #  9 LDG 10 FMUL 11 STG 12 ISETP 13 @!P1 BRA->9         pass 2: 5 a trip of one pack
    # 14 ISETP 15 @!P2 BRA->1 (row loop)  16 EXIT
    # The row loop's own work is 5 instructions a row (IADD3, SHFL, FADD,
    # ISETP, BRA). Pass 2 is the innermost loop of 16-byte loads and stores,
    # but not the row loop: both passes run a trip per pack of the thread's
    # share of the row.
    LINES = ["S2R R0, SR_TID.X", "IADD3 R1, R1, 0x1, RZ",
             "LDG.E.128 R4, desc[UR4][R2.64]", "FFMA R5, R4, R4, R5", "FMNMX R6, R5, R6, !PT",
             "ISETP.GE.AND P0, PT, R2, R8, PT", f"@!P0 BRA {addr(2)}",
             "SHFL.BFLY PT, R9, R5, 0x1, 0x1f", "FADD R5, R5, R9",
             "LDG.E.128 R4, desc[UR4][R2.64]", "FMUL R4, R4, R6", "STG.E.128 desc[UR4][R10.64], R4",
             "ISETP.GE.AND P1, PT, R10, R8, PT", f"@!P1 BRA {addr(9)}",
             "ISETP.GE.AND P2, PT, R1, R9, PT", f"@!P2 BRA {addr(1)}", "EXIT"]

    def kernel(self):
        return static_model.Kernel("k", "k", "softmax", "f32", "streaming", "forward",
                                   softmax={"algorithm": "streaming", "param": None})

    def test_both_passes_run_a_trip_per_pack(self):
        # 16 fp32 elements a thread: 4 packs, 4 trips of each pass. Issued:
        # 5 + 4 * 5 + 4 * 5 = 45 a row, 45 / 16 = 2.8125 an element; FMA pipe
        # FADD + 4 FFMA + 4 FMUL = 9; ALU IADD3 + ISETP + 4 * (FMNMX + ISETP)
        # + 4 ISETP = 14.
        cfg = sass.Cfg(sass.parse_sass(function(self.LINES))["kernel"])
        loop, path, elems = static_model.analyze_rows(cfg, self.kernel(), 16.0)
        self.assertEqual(cfg.blocks[loop.header].start, 16 * 1)  # the row loop, not pass 2
        self.assertEqual(elems, 16.0)
        self.assertEqual(path.counts["issue"], 45)
        self.assertEqual(path.counts["fma"], 9)
        self.assertEqual(path.counts["alu"], 14)

    def test_the_rows_of_the_table(self):
        # 512 threads: at 2048 columns 4 elements a thread, one trip of each
        # pass: (5 + 5 + 5) / 4 = 3.75 an element; at 131072, 256 a thread,
        # 64 trips each: (5 + 128 * 5) / 256 = 2.51953. Forward reads x twice:
        # capped at 2/3 of copy.
        instrs = sass.parse_sass(function(self.LINES))["kernel"]
        rows = {r["cols"]: r for r in static_model.analyze_kernel(self.kernel(), instrs, {"REG": 32}, 512)}
        self.assertEqual(rows[2048]["per_element"]["issue"], 3.75)
        self.assertEqual(rows[131072]["per_element"]["issue"], 2.52)
        self.assertAlmostEqual(rows[131072]["fraction_H200"], 0.6667, places=4)


class FromOutput(unittest.TestCase):
    # An activation's backward kernel: a loop of two 16-byte loads (x or y,
    # and dy) and one store, branching on the form's from_output byte (a
    # kernel parameter at c[0x0][0x218]):
    #  0 S2R  1 ULDC.U8 (entry)
    #  2 LDG 3 LDG 4 ISETP 5 @!P1 BRA->9                common: x path when clear
    #  6 FMUL 7 FMUL 8 BRA->13                          the y path: 3
    #  9 MUFU 10 FFMA 11 MUFU 12 FADD                   the x path: 4 (the longer)
    # 13 ISETP 14 STG 15 @!P0 BRA->2  16 EXIT           common
    # Common 7 a trip of one pack (4 fp32 elements): the y path issues 10
    # (2.5 an element), the x path 11 (2.75).
    LINES = ["S2R R0, SR_TID.X", "ULDC.U8 UR5, c[0x0][0x218]",
             "LDG.E.128 R4, desc[UR4][R2.64]", "LDG.E.128 R12, desc[UR4][R16.64]",
             "ISETP.NE.AND P1, PT, RZ, UR5, PT", f"@!P1 BRA {addr(9)}",
             "FMUL R5, R5, R12", "FMUL R6, R6, R12", f"BRA {addr(13)}",
             "MUFU.EX2 R5, R5", "FFMA R6, R5, R6, R12", "MUFU.EX2 R7, R7", "FADD R6, R6, R7",
             "ISETP.GE.AND P0, PT, R2, R8, PT", "STG.E.128 desc[UR4][R10.64], R4",
             f"@!P0 BRA {addr(2)}", "EXIT"]
    NAME = ("void cuact::detail::rows_kernel<cuact::detail::ActivationBackward<cuact::device::Relu<float>, "
            "float, false> >(cuact::detail::ActivationBackward<cuact::device::Relu<float>, float, false>, "
            "cuact::detail::RowCall)")

    def test_the_call_fixes_the_branch(self):
        cfg, loop, longer = loop_path(self.LINES)
        y = sass.counted_path(cfg, loop, fixed={0x218: 1})
        x = sass.counted_path(cfg, loop, fixed={0x218: 0})
        self.assertEqual((longer.counts["issue"], y.counts["issue"], x.counts["issue"]), (11, 10, 11))
        self.assertEqual((y.counts["fma"], y.counts["xu"]), (2, 0))
        self.assertEqual((x.counts["fma"], x.counts["xu"]), (2, 2))
        # A byte the call does not fix leaves the longer side.
        self.assertEqual(sass.counted_path(cfg, loop, fixed={0x21c: 1}).counts["issue"], 11)

    def test_the_flag_is_the_forms_last_word(self):
        # The form, the first parameter: Relu (1 byte), scale, from_output
        # and padding: 12 bytes, the flag at 0x210 + 8. Celu's two floats
        # make it 16: the flag at 0x210 + 12.
        k = static_model.classify("k", self.NAME)
        self.assertEqual(static_model.from_output_byte(k, {0: (0, 12), 1: (16, 408)}), 0x218)
        self.assertEqual(static_model.from_output_byte(k, {0: (0, 16), 1: (16, 408)}), 0x21c)
        gelu = static_model.classify("k", self.NAME.replace("Relu", "Gelu"))
        self.assertIsNone(static_model.from_output_byte(gelu, {0: (0, 12)}))

    def test_each_form_counts_its_path(self):
        k = static_model.classify("k", self.NAME)
        instrs = sass.parse_sass(function(self.LINES))["kernel"]
        rows = static_model.analyze_kernel(k, instrs, {"REG": 40}, 256, {0: (0, 12), 1: (16, 408)})
        issue = {r["form"]: r["per_element"]["issue"] for r in rows}
        self.assertEqual(issue, {"": 2.75, "from output": 2.5, "bias+act": 2.75})


class QuantizedOutput(unittest.TestCase):
    # A bf16 -> fp8 forward kernel with dropout (one input stream, codes out,
    # the optional mask), its loop two rows of eight bf16 (one 16-byte load
    # each) a trip. The codes are stored with st.global.wb (STG...STRONG.SM)
    # behind the `writes` flag byte (c[0x0][0x3a8]): row 0 as one predicated
    # pair (4-byte halves or one 8-byte access), row 1 behind a uniform
    # branch on the plan's access width; the mask bytes (plain STG.E.64)
    # behind a null test of the mask pointer (c[0x0][0x2f8]).
    #  0 S2R 1 LDC.U8 (flag) 2 LDC.64 (mask) 3 LDC (access)          entry
    #  4 LDG 5 LDG 6 FMUL 7..70 MUFU x64 71 FMNMX 72 F2FP 73 PRMT
    # 74 ISETP (flag) 75 ISETP (access) 76 @!P1 BRA->79               row 0
    # 77 @P2 STG.E 78 @!P2 STG.E.64                                   its codes
    # 79 ISETP.U32 80 ISETP.EX 81 @!P3 BRA->83   82 STG.E.64 (mask)
    # 83 FMUL 84 FMNMX 85 @!P1 BRA->91 86 @!P2 BRA->90                row 1
    # 87 STG.E 88 STG.E 89 BRA->91   90 STG.E.64                      its codes
    # 91 @!P3 BRA->93   92 STG.E.64 (mask)   93 ISETP 94 @!P0 BRA->4 95 EXIT
    NAME = ("void cuact::detail::rows_kernel<cuact::detail::ActivationForward<cuact::device::Gelu<float>, "
            "__nv_bfloat16, true, cuact::detail::Code8> >(cuact::detail::ActivationForward<"
            "cuact::device::Gelu<float>, __nv_bfloat16, true, cuact::detail::Code8>, cuact::detail::RowCall)")

    def lines(self):
        a, m = addr, 64  # the indices of the listing above
        return (["S2R R0, SR_TID.X", "LDC.U8 R52, c[0x0][0x3a8]", "LDC.64 R20, c[0x0][0x2f8]",
                 "LDC R30, c[0x0][0x238]",
                 "LDG.E.128 R4, desc[UR4][R2.64]", "LDG.E.128 R8, desc[UR4][R2.64+0x10]", "FMUL R12, R4, R40"]
                + ["MUFU.EX2 R12, R12"] * m
                + ["FMNMX R41, |R4|, R41, !PT", "F2FP.SATFINITE.E4M3.F32.PACK_AB_MERGE_C R13, R12, R12, RZ",
                   "PRMT R14, R13, 0x5410, R13", "ISETP.NE.AND P1, PT, R52, RZ, PT",
                   "ISETP.NE.AND P2, PT, R30, 0x10, PT", f"@!P1 BRA {a(79)}",
                   "@P2 STG.E.STRONG.SM desc[UR4][R10.64], R14", "@!P2 STG.E.64.STRONG.SM desc[UR4][R10.64], R14",
                   "ISETP.NE.U32.AND P3, PT, R20, RZ, PT", "ISETP.NE.AND.EX P3, PT, R21, RZ, PT, P3",
                   f"@!P3 BRA {a(83)}", "STG.E.64 desc[UR4][R22.64], R16",
                   "FMUL R15, R8, R40", "FMNMX R41, |R8|, R41, !PT", f"@!P1 BRA {a(91)}", f"@!P2 BRA {a(90)}",
                   "STG.E.STRONG.SM desc[UR4][R10.64+0x8], R14", "STG.E.STRONG.SM desc[UR4][R10.64+0xc], R15",
                   f"BRA {a(91)}", "STG.E.64.STRONG.SM desc[UR4][R10.64+0x8], R14",
                   f"@!P3 BRA {a(93)}", "STG.E.64 desc[UR4][R22.64+0x8], R16",
                   "ISETP.GE.AND P0, PT, R2, R24, PT", f"@!P0 BRA {a(4)}", "EXIT"])

    def test_classification_and_bytes(self):
        # bf16 in (2 bytes), one code byte out: 3 bytes an element, 4 with the
        # mask's byte; the fp32 functor (Gelu<float>) names the activation.
        k = static_model.classify("k", self.NAME)
        self.assertEqual((k.family, k.op, k.direction, k.dtype, k.in_dtype, k.quantized, k.width),
                         ("row", "gelu", "forward", "bf16->fp8", "bf16", True, 8))
        self.assertEqual(k.forms, [("fused", "act+dropout fp8", 3, 1), ("fused", "act+dropout+mask fp8", 4, 1)])
        plain = static_model.classify("k", self.NAME.replace(", true,", ", false,"))
        self.assertEqual(plain.forms, [("fused", "act fp8", 3, 1), ("fused", "bias+act fp8", 3, 1),
                                       ("fused", "glu fp8", 5, 2)])
        # Backward from fp32 inputs: x (or y) and dy read, codes written: 4 + 4 + 1.
        back = static_model.classify("k", self.NAME.replace("ActivationForward", "ActivationBackward")
                                     .replace("Gelu", "Relu").replace("__nv_bfloat16, true", "float, false"))
        self.assertEqual((back.direction, back.dtype, back.in_streams), ("backward", "f32->fp8", 2))
        self.assertEqual(back.forms, [("fused", "act fp8", 9, 2), ("fused", "from output fp8", 9, 2),
                                      ("fused", "bias+act fp8", 9, 2)])
        # Today's kernels name their output type too (the input's): read as before.
        old = static_model.classify("k", self.NAME.replace("Gelu<float>, __nv_bfloat16, true, cuact::detail::Code8",
                                                           "Gelu<__half>, __half, true, __half"))
        self.assertEqual((old.dtype, old.quantized), ("f16", False))
        self.assertEqual(old.forms, [("fused", "act+dropout", 4, 1), ("fused", "act+dropout+mask", 5, 1)])

    def test_hand_counted_rows(self):
        # Elements a trip: the widest st.global.wb stores, one code byte an
        # element: 8 + 8 bytes = 16 (row 0's 4-byte alternative and the mask's
        # plain 8-byte stores left out); 2 loads x 8 bf16 = 16 x 1 stream.
        # Without the mask, issued: LDG x2, FMUL, 64 MUFU, FMNMX, F2FP, PRMT,
        # 2 ISETP, BRA (row 0: 73); 2 STG (its codes); 2 ISETP, BRA (the mask
        # test; its store skipped); FMUL, FMNMX, 2 BRA; STG.E.64 (the wide side
        # of the access branch, not the longer one); BRA (row 1's mask test);
        # ISETP, BRA: 73 + 2 + 3 + 4 + 1 + 1 + 2 = 86 a trip, 5.375 an element;
        # with the mask 88 (5.5). XU 64 / 16 = 4 an element: 4 / 0.5 / 32 SM-cycles,
        # 1.04544e12 elements/s on 132 SMs at 1.98 GHz: x 3 bytes = 3.136e12
        # B/s (H100 1.00 of 3.0 TB/s, H200 0.72938 of 4.3); x 4 bytes with the
        # mask: 4.182e12 (H200 0.97250).
        k = static_model.classify("k", self.NAME)
        instrs = sass.parse_sass(function(self.lines()))["kernel"]
        rows = {r["form"]: r for r in static_model.analyze_kernel(k, instrs, {"REG": 64}, 256, {})}
        no_mask, mask = rows["act+dropout fp8"], rows["act+dropout+mask fp8"]
        self.assertEqual((no_mask["elements_per_trip"], mask["elements_per_trip"]), (16, 16))
        self.assertEqual((no_mask["bytes_per_element"], mask["bytes_per_element"]), (3, 4))
        self.assertEqual((no_mask["per_element"]["issue"], mask["per_element"]["issue"]), (86 / 16, 88 / 16))
        self.assertEqual(no_mask["per_element"]["xu"], 4.0)
        self.assertEqual((no_mask["loads_in_flight"], no_mask["loads_per_trip"]), (2, 2))
        self.assertEqual((no_mask["fraction_H100"], no_mask["binding_H200"]), (1.0, "xu"))
        self.assertAlmostEqual(no_mask["fraction_H200"], 0.72938, places=4)
        self.assertAlmostEqual(mask["fraction_H200"], 0.97250, places=4)
        self.assertEqual((no_mask["dtype"], no_mask["input_dtype"], no_mask["output"]),
                         ("bf16->fp8", "bf16", "e4m3/e5m2"))
        self.assertEqual(no_mask["flags"], [])

    def test_the_flag_byte_is_not_the_optional_output(self):
        # The code stores sit behind the `writes` byte: a call without the
        # mask still counts them (only the pointer-tested mask stores go).
        instrs = sass.parse_sass(function(self.lines()))["kernel"]
        cfg = sass.Cfg(instrs)
        self.assertEqual(sass.steady_state_loops(cfg), [])  # no 128-bit stores
        loop = sass.steady_state_loops(cfg, narrow_stores=True)[0]
        without = sass.counted_path(cfg, loop, optional_output_absent=True)
        stores = [i.op for b in sorted(without.blocks) for i in cfg.blocks[b].instrs if i.base == "STG"]
        self.assertEqual(stores, ["STG.E.STRONG.SM", "STG.E.64.STRONG.SM", "STG.E.64.STRONG.SM"])


class Parsing(unittest.TestCase):
    def test_res_usage_and_max_threads(self):
        res = sass.parse_res_usage(" Function _Z1kv:\n  REG:40 STACK:0 SHARED:16 LOCAL:0 CONSTANT[0]:560\n")
        self.assertEqual(res["_Z1kv"]["REG"], 40)
        self.assertEqual(res["_Z1kv"]["SHARED"], 16)
        elf = (".nv.info._Z1kv\n\tAttribute:\tEIATTR_MAX_THREADS\n\tFormat:\tEIFMT_SVAL\n"
               "\tValue:\t0x100 0x1 0x1 \n")
        self.assertEqual(sass.parse_max_threads(elf)["_Z1kv"], 256)
        params = (".nv.info._Z1kv\n\tAttribute:\tEIATTR_KPARAM_INFO\n\tFormat:\tEIFMT_SVAL\n"
                  "\tValue:\tIndex : 0x0\tOrdinal : 0x1\tOffset  : 0x10\tSize    : 0x198\n"
                  "\tAttribute:\tEIATTR_KPARAM_INFO\n\tFormat:\tEIFMT_SVAL\n"
                  "\tValue:\tIndex : 0x0\tOrdinal : 0x0\tOffset  : 0x0\tSize    : 0xc\n")
        self.assertEqual(sass.parse_params(params)["_Z1kv"], {0: (0, 12), 1: (16, 408)})

    def test_pipes(self):
        for op, pipe in (("FFMA.SAT", "fma"), ("HFMA2.MMA", "fma"), ("IMAD.WIDE.U32", "imad"),
                         ("FSETP.GT.AND", "alu"), ("F2FP.BF16.F32.PACK_AB", "alu"),
                         ("MUFU.EX2", "xu"), ("F2F.F64.F32", "xu"), ("FRND.TRUNC", "xu"),
                         ("DFMA", "fp64"), ("LDG.E.128", "other"), ("BRA", "other")):
            self.assertEqual(sass.pipe_of(op), pipe, op)
        self.assertTrue(sass.is_fp64("F2F.F64.F32"))
        self.assertFalse(sass.is_fp64("F2F.F16.F32"))


class Classification(unittest.TestCase):
    def test_activation_names(self):
        self.assertEqual(static_model.activation_of("cuact::detail::GeluOp"), "gelu")
        self.assertEqual(static_model.activation_of(
            "cuact::detail::SigmoidGatedOp<cuact::detail::QuickGeluGate, (cuact::ActivationKind)10>"),
            "quick_gelu")
        self.assertEqual(static_model.activation_of("cuact::detail::LogSigmoidOp"), "log_sigmoid")
        self.assertEqual(static_model.activation_of("cuact::detail::Relu6Op"), "relu6")


class RowMoves(unittest.TestCase):
    """--moves-from: a renovation's proof of no change, worked out by hand."""

    def row(self, op, issue, h200):
        return {"family": "fused", "op": op, "dtype": "bf16", "direction": "forward", "form": "glu",
                "detail": "", "per_element": {"issue": issue}, "fraction_H100": 1.0,
                "fraction_H200": h200}

    def test_moves_and_fractions(self):
        old = [self.row("gelu", 20.0, 1.0), self.row("silu", 30.0, 0.95), self.row("relu", 10.0, 1.0)]
        new = [self.row("gelu", 20.0, 1.0), self.row("silu", 31.5, 0.91)]
        lines = static_model.row_moves(old, new)
        self.assertIn("missing: " + static_model.row_key(old[2]), lines)
        self.assertIn("fraction " + static_model.row_key(old[1]) + ": H200 0.95 -> 0.91", lines)
        self.assertIn("2 rows in both: 1 moved, 1 by more than 3%", lines)
        self.assertIn("  +5.00%  30.000 -> 31.500  " + static_model.row_key(old[1]), lines)


if __name__ == "__main__":
    unittest.main()
