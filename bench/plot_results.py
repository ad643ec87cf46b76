#!/usr/bin/env python3
"""Turn cuact-bench --json output into a PNG chart: each kernel's bandwidth
as a fraction of the copy kernel measured in the same run, per dtype, for the
largest aligned size, plus a panel per size showing the spread over kernels.

usage: python3 bench/plot_results.py results.json chart.png
(needs matplotlib: python3 -m pip install -r bench/requirements.txt)
"""
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        run = json.load(f)
    rows = [r for r in run["results"] if r["status"] == "ok" and r["family"] != "copy"]
    if not rows:
        sys.exit("no timed results in " + src)
    largest = max(r["elements"] for r in rows)
    by_dtype = defaultdict(list)
    for r in rows:
        if r["elements"] == largest and "misaligned" not in r["shape"]:
            by_dtype[r["dtype"]].append(r)
    fig, axes = plt.subplots(len(by_dtype), 1, figsize=(16, 3.2 * len(by_dtype)), squeeze=False)
    for ax, (dtype, rs) in zip(axes.flat, sorted(by_dtype.items())):
        rs.sort(key=lambda r: (r["op"], r["direction"]))
        labels = [f'{r["op"]}\n{r["direction"][:8]}' for r in rs]
        ax.bar(range(len(rs)), [r["copy_fraction"] for r in rs],
               color=["tab:blue" if r["direction"] == "forward" else "tab:orange" for r in rs])
        ax.axhline(0.95, color="red", lw=0.8, ls="--", label="95% target")
        ax.set_xticks(range(len(rs)))
        ax.set_xticklabels(labels, fontsize=6, rotation=90)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("fraction of copy")
        ax.set_title(f"{dtype}, n = {largest} ({run['device']})", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
