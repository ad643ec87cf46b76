#!/usr/bin/env python3
"""Draw cuact-bench --gallery output as one PNG grid: each activation's f(x)
and f'(x) on [-6, 6], as sampled by cuact (the kernels on a GPU, the CPU
reference without one; the CSV's first line says which).

usage: python3 bench/plot_gallery.py gallery.csv gallery.png
(needs matplotlib: python3 -m pip install -r bench/requirements.txt)
"""
import csv
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        source = f.readline().lstrip("# ").strip().removeprefix("sampled by ")
        rows = list(csv.DictReader(f))
    ops = []
    series = {}
    for r in rows:
        op = r["op"]
        if op not in series:
            ops.append(op)
            series[op] = ([], [], [])
        for i, key in enumerate(("x", "f", "df")):
            series[op][i].append(float(r[key]))
    cols = 6
    grid_rows = math.ceil(len(ops) / cols)
    fig, axes = plt.subplots(grid_rows, cols, figsize=(3.0 * cols, 2.4 * grid_rows), squeeze=False)
    for ax, op in zip(axes.flat, ops):
        x, f, df = series[op]
        ax.axhline(0, color="0.85", lw=0.8)
        ax.axvline(0, color="0.85", lw=0.8)
        ax.plot(x, f, lw=1.6, label="f(x)")
        ax.plot(x, df, lw=1.2, ls="--", label="f'(x)")
        ax.set_title(op, fontsize=10)
        ax.set_xlim(-6, 6)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(ops):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"cuact activations and derivatives (sampled by {source})", fontsize=12)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
