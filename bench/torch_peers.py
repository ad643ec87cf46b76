#!/usr/bin/env python3
"""cuact's torch operators beside the kernels a PyTorch user would otherwise
run: eager torch.nn.functional and its torch.compile'd form, each timed with
CUDA events in the same run as a copy kernel over the same bytes. The fp8 rows
(gelu->fp8, swiglu->fp8: cuact's fused activation + quantization with a given
scale) are timed beside the unfused computation a user would write,
(act(x) * scale).clamp(-448, 448).to(torch.float8_e4m3fn), eager and compiled. Writes
cuact-bench's JSON and CSV formats (family "torch"; peers torch_eager and
torch_compile, in ms; copy_fraction is cuact's speed as a fraction of the
copy's). Needs a GPU and the cuact Python package (pip install ./python).

  python3 bench/torch_peers.py --size 2^26 --json out.json --csv out.csv
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def parse_size(text):
    return 2 ** int(text[2:]) if text.startswith("2^") else int(text)


def cases():
    """(op, shape kind, cuact function, torch function)."""
    import cuact.functional as CF

    rows = lambda n: (n // 4096, 4096)  # noqa: E731  softmax rows of 4096
    return [
        ("relu", None, CF.relu, F.relu),
        ("gelu", None, CF.gelu, F.gelu),
        ("gelu_tanh", None, lambda x: CF.gelu(x, "tanh"), lambda x: F.gelu(x, approximate="tanh")),
        ("silu", None, CF.silu, F.silu),
        ("mish", None, CF.mish, F.mish),
        ("softplus", None, CF.softplus, F.softplus),
        ("sigmoid", None, CF.sigmoid, torch.sigmoid),
        ("tanh", None, CF.tanh, torch.tanh),
        ("hardswish", None, CF.hardswish, F.hardswish),
        ("leaky_relu", None, CF.leaky_relu, F.leaky_relu),
        ("swiglu", "pairs", CF.swiglu, lambda x: F.silu(x.chunk(2, -1)[0]) * x.chunk(2, -1)[1]),
        ("softmax", rows, lambda x: CF.softmax(x, -1), lambda x: F.softmax(x, -1)),
        ("log_softmax", rows, lambda x: CF.log_softmax(x, -1), lambda x: F.log_softmax(x, -1)),
    ]


FP8_SCALE = 16.0


def fp8_cases():
    """(op, shape kind, cuact function, torch function), both returning e4m3 codes."""
    import cuact.functional as CF

    def unfused(f):
        return lambda x: (f(x).float() * FP8_SCALE).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)

    swiglu = lambda x: F.silu(x.chunk(2, -1)[0]) * x.chunk(2, -1)[1]  # noqa: E731
    return [
        ("gelu->fp8", None, lambda x, s: CF.activation_fp8(x, "gelu", scale=s).data, unfused(F.gelu)),
        ("swiglu->fp8", "pairs", lambda x, s: CF.swiglu_fp8(x, scale=s).data, unfused(swiglu)),
    ]


def measure_fp8(op, shape_kind, ours, theirs, dtype_name, n, runs):
    """One fp8 forward row: x in its dtype read, one byte per code written."""
    dtype = DTYPES[dtype_name]
    shape = (n // 4096, 8192) if shape_kind == "pairs" else (n,)
    x = torch.randn(shape, device="cuda", dtype=dtype)
    scale = torch.tensor([FP8_SCALE], device="cuda", dtype=torch.float32)
    out_numel = x.numel() // 2 if shape_kind == "pairs" else x.numel()
    nbytes = x.numel() * x.element_size() + out_numel
    compiled = torch.compile(theirs)
    fns = {"cuact": lambda: ours(x, scale), "torch_eager": lambda: theirs(x),
           "torch_compile": lambda: compiled(x)}
    # Codes may differ by one fp8 step next to a rounding boundary (the
    # unfused path rounds the activation to the input dtype first).
    a, b = fns["cuact"]().float(), fns["torch_eager"]().float()
    status, note = "ok", ""
    if not torch.allclose(a, b, rtol=0.13, atol=2.0 ** -9):
        status, note = "wrong", "cuact and the unfused torch computation disagree beyond one fp8 step"
    src = torch.empty(nbytes // 2, device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    copy = time_ms(lambda: dst.copy_(src), runs)
    timed = {name: time_ms(fn, runs) for name, fn in fns.items()}
    med, p10, p90 = timed["cuact"]
    return {
        "family": "torch", "op": op, "dtype": dtype_name, "direction": "forward",
        "shape": "x" + "x".join(map(str, shape)), "elements": x.numel(), "bytes": nbytes,
        "status": status, "note": note, "median_ms": med, "p10_ms": p10, "p90_ms": p90,
        "gbps": nbytes / med / 1e6, "copy_fraction": copy[0] / med,
        "peers": {"torch_eager": timed["torch_eager"][0], "torch_compile": timed["torch_compile"][0],
                  "copy": copy[0]},
    }


def time_ms(fn, runs):
    """Median, p10 and p90 of `runs` timings (ms), after a warm-up."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
    return pick(0.5), pick(0.1), pick(0.9)


def measure(op, shape_kind, ours, theirs, dtype_name, direction, n, runs):
    dtype = DTYPES[dtype_name]
    shape = (n // 4096, 8192) if shape_kind == "pairs" else (shape_kind(n) if shape_kind else (n,))
    x = torch.randn(shape, device="cuda", dtype=dtype)
    size = x.element_size()
    compiled = torch.compile(theirs)
    if direction == "forward":
        out_numel = x.numel() // 2 if shape_kind == "pairs" else x.numel()
        nbytes = (x.numel() + out_numel) * size
        fns = {name: (lambda f=f: f(x)) for name, f in
               (("cuact", ours), ("torch_eager", theirs), ("torch_compile", compiled))}
        check = (ours(x), theirs(x))
    else:
        xg = x.detach().requires_grad_()
        graphs = {name: f(xg) for name, f in
                  (("cuact", ours), ("torch_eager", theirs), ("torch_compile", compiled))}
        dy = torch.randn_like(graphs["cuact"])
        nbytes = (2 * x.numel() + dy.numel()) * size
        fns = {name: (lambda y=y: torch.autograd.grad(y, xg, dy, retain_graph=True))
               for name, y in graphs.items()}
        check = (fns["cuact"]()[0], fns["torch_eager"]()[0])
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    status, note = "ok", ""
    if not torch.allclose(check[0].float(), check[1].float(), rtol=tol, atol=tol):
        status, note = "wrong", "cuact and torch.nn.functional disagree beyond the check tolerance"
    src = torch.empty(nbytes // 2 // size, device="cuda", dtype=dtype)
    dst = torch.empty_like(src)
    copy = time_ms(lambda: dst.copy_(src), runs)
    timed = {name: time_ms(fn, runs) for name, fn in fns.items()}
    med, p10, p90 = timed["cuact"]
    return {
        "family": "torch", "op": op, "dtype": dtype_name, "direction": direction,
        "shape": "x" + "x".join(map(str, shape)), "elements": x.numel(), "bytes": nbytes,
        "status": status, "note": note, "median_ms": med, "p10_ms": p10, "p90_ms": p90,
        "gbps": nbytes / med / 1e6, "copy_fraction": copy[0] / med,
        "peers": {"torch_eager": timed["torch_eager"][0], "torch_compile": timed["torch_compile"][0],
                  "copy": copy[0]},
    }


def to_csv(results):
    lines = ["family,op,dtype,direction,shape,elements,bytes,status,median_ms,p10_ms,p90_ms,gbps,"
             "copy_fraction,peers"]
    for r in results:
        peers = ";".join(f"{k}={v:.6f}" for k, v in r["peers"].items())
        lines.append(f'{r["family"]},{r["op"]},{r["dtype"]},{r["direction"]},"{r["shape"]}",'
                     f'{r["elements"]},{r["bytes"]},{r["status"]},{r["median_ms"]:.6f},'
                     f'{r["p10_ms"]:.6f},{r["p90_ms"]:.6f},{r["gbps"]:.2f},'
                     f'{r["copy_fraction"]:.4f},"{peers}"')
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", default="2^26", help="elements per tensor (2^k or a count)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--op", action="append", help="only these ops (repeatable)")
    ap.add_argument("--json")
    ap.add_argument("--csv")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_peers: no GPU (torch sees no CUDA device); nothing to time")
        return 0
    n = parse_size(args.size)
    results = []
    for op, shape_kind, ours, theirs in cases():
        if args.op and op not in args.op:
            continue
        for dt in DTYPES:
            for direction in ("forward", "backward"):
                r = measure(op, shape_kind, ours, theirs, dt, direction, n, args.runs)
                results.append(r)
                print(f'{op:12s} {dt:5s} {direction:9s} {r["median_ms"]:8.4f} ms '
                      f'{r["copy_fraction"]:.3f} of copy  eager {r["peers"]["torch_eager"]:.4f} '
                      f'compile {r["peers"]["torch_compile"]:.4f}  {r["status"]}', flush=True)
    for op, shape_kind, ours, theirs in fp8_cases():
        if args.op and op not in args.op:
            continue
        for dt in DTYPES:
            r = measure_fp8(op, shape_kind, ours, theirs, dt, n, args.runs)
            results.append(r)
            print(f'{op:12s} {dt:5s} forward   {r["median_ms"]:8.4f} ms '
                  f'{r["copy_fraction"]:.3f} of copy  eager {r["peers"]["torch_eager"]:.4f} '
                  f'compile {r["peers"]["torch_compile"]:.4f}  {r["status"]}', flush=True)
    props = torch.cuda.get_device_properties(0)
    info = {"tool": "cuact-bench torch peers", "device": f"{props.name} (sm_{props.major}{props.minor})",
            "peak_gbps": 0.0, "runs": args.runs, "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(info, f, indent=1)
    if args.csv:
        with open(args.csv, "w") as f:
            f.write(to_csv(results))
    return 1 if any(r["status"] != "ok" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
