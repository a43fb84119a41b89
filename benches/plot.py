#!/usr/bin/env python3
"""Chart for benches/load.sh results: req/s, p99 and CPU per request for each target, one bar
per server thread count, with the ratios (mint/bare, gw/bareproxy, gw/nginx, ...) written on
the bars.

    python3 benches/plot.py RESULTS.json OUT.png     # or OUT.svg

RESULTS.json is what `bash benches/load.sh --json RESULTS.json` writes. Needs matplotlib
(load.sh installs it into a venv under the target dir when the system python lacks it).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

SHORT = {
    "mint": "mint\n(gateway POST)",
    "bare": "bare responder\n(POST)",
    "gw": "gateway\npass-through",
    "bareproxy": "bare Pingora\nproxy",
    "nginx": "nginx\npass-through",
    "origin": "origin\ndirect",
}
COLOURS = ["#3b6ea8", "#e08a2c", "#4f9a55", "#b54a4a", "#7a5aa6"]

# (panel title, target field, ratio field, value format)
PANELS = [
    ("requests per second (higher is better)", "rps", "rps", lambda v: f"{v / 1000:.1f}k"),
    ("p99 latency, ms (lower is better)", "p99_ms", "p99", lambda v: f"{v:.2f}"),
    ("server CPU per request, µs (user solid, sys hatched; lower is better)",
     "cpu_us_per_req", "cpu_us_per_req", lambda v: f"{v:.1f}"),
]


def ratio_lines(target, field):
    """ "0.63× bare" for each ratio this target has (it is the numerator)."""
    out = []
    for other, r in (target.get("ratios") or {}).items():
        if r.get(field) is not None:
            out.append(f"{r[field]:.2f}× {other}")
    return out


def main(src, dst):
    with open(src) as f:
        res = json.load(f)
    settings = res["settings"]
    names = settings["targets"]
    threads = settings["server_threads"]
    by_key = {(t["name"], t["threads"]): t for t in res["targets"]}

    fig, axes = plt.subplots(3, 1, figsize=(max(11, 2 + 1.15 * len(names) * len(threads)), 12.5),
                             sharex=True)
    width = 0.8 / len(threads)
    for ax, (title, field, rfield, fmt) in zip(axes, PANELS):
        top = 0.0
        for j, th in enumerate(threads):
            colour = COLOURS[j % len(COLOURS)]
            for i, name in enumerate(names):
                t = by_key.get((name, th))
                if t is None or t.get(field) is None:
                    continue
                x = i + (j - (len(threads) - 1) / 2) * width
                v = t[field]
                label = f"{th} thread(s)" if i == 0 else None
                if field == "cpu_us_per_req":
                    u, s = t["user_us_per_req"], t["sys_us_per_req"]
                    ax.bar(x, u, width * 0.9, color=colour, label=label)
                    ax.bar(x, s, width * 0.9, bottom=u, color=colour, alpha=0.45, hatch="//",
                           edgecolor="white")
                else:
                    ax.bar(x, v, width * 0.9, color=colour, label=label)
                text = "\n".join([fmt(v)] + ratio_lines(t, rfield))
                ax.annotate(text, (x, v), xytext=(0, 3), textcoords="offset points",
                            ha="center", va="bottom", fontsize=7.5 if len(threads) == 1 else 6.8,
                            linespacing=1.15)
                top = max(top, v)
        ax.set_ylim(0, top * 1.45 if top > 0 else 1)
        if field == "rps":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        if len(threads) > 1:
            ax.legend(fontsize=8, loc="upper right", title="server threads", title_fontsize=8)
    axes[-1].set_xticks(range(len(names)))
    axes[-1].set_xticklabels([SHORT.get(n, n) for n in names], fontsize=9)

    m, v = res["machine"], res["versions"]
    other = max((t.get("other_load_cores") or 0) for t in res["targets"])
    commit = v["gateway_commit"][:10] + (" (dirty)" if v.get("gateway_dirty") else "")
    fig.suptitle(
        f"presign-gateway under load: wrk -t{settings['wrk_threads']} -c{settings['connections']} "
        f"-d{settings['duration_s']}s · server threads: {', '.join(map(str, threads))} · "
        f"{m['cores']} cores · other load up to {other:.2f} cores\n"
        "ratios on the bars: this target ÷ the named one, same thread count",
        fontsize=11)
    fig.text(0.01, 0.005,
             f"gateway {commit} · {v['rustc']} · {v['nginx']} · {v['wrk']} · {m['cpu']} · {res['date']}\n"
             "CPU per request: utime+stime of the server's processes (/proc/PID/stat) over the "
             "measured run ÷ requests completed; origin and wrk not included",
             fontsize=7.5, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
