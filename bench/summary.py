#!/usr/bin/env python3
"""Mean and spread over seeds of the runs recorded in bench/results.md.

  .venv/bin/python bench/summary.py [--plot docs/accuracy-vs-minutes.png]

Groups the blocks that bench/pipeline.py appended by their label (the text between
"preset" and the seed, e.g. "fast"). When a seed was run more than once under the
same label, its latest block counts. --plot draws each current preset's accuracy
(validation and test: mean, with the seeds' range) against its GAN training minutes.
"""

import os
import re
import statistics

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HEADING = re.compile(r"^### preset (?P<label>.+), seed (?P<seed>\d+) \(", re.MULTILINE)
_PLOT = flags.DEFINE_string("plot", None, "Also draw accuracy against GAN minutes into this PNG.")
# The default preset's recipes, as bench/results.md labels them since each was replaced.
TWO_RUNS = "default (two independent runs: 2026-11-24 to 2026-12-03)"
COVERAGE = "default (coverage focus, D on single images: 2026-12-03 to 2026-12-04)"
# The presets, as (label in bench/results.md, what the plot calls it, the label whose blocks give its GAN minutes,
# the factor on those minutes, minutes added so that marks do not hide each other, which side its name goes).
# The default's later recipes were timed only on the Intel Xeon or beside other work, so they are drawn at the
# minutes of the two-run recipe they extend: coverage focus trains the same steps at the same speed (a screen),
# packing 2 at 1.14 times (a screen of digits 5 and 9; docs/techniques.md).
PLOTTED = (
    ("fast", "fast", "fast", 1.0, 0.0, "right"),
    (TWO_RUNS, "default before\ncoverage focus", TWO_RUNS, 1.0, -0.75, "left"),
    (f"{TWO_RUNS} with --coverage-focus=2", "default before\npacking", TWO_RUNS, 1.0, 0.75, "left"),
    (f"{COVERAGE} with --packing=2", "default", TWO_RUNS, 1.14, 0.0, "right"),
    ("best", "best (1 seed)", "best", 1.0, 0.0, "right"),
)
# mnist-gan's own figure: test accuracy of one run after about 300 CPU-hours.
ORIGINAL_TEST = 98.37
_GAN = re.compile(r"\| GAN training \(10 digits\) \| (?P<minutes>[\d.]+) min")
_TOTAL = re.compile(r"\| \*\*total\*\* \| \*\*(?P<minutes>[\d.]+) min\*\*")
# Blocks before validation accuracy was recorded have only the test figure.
_ACCURACY = re.compile(
    r"- (?:test accuracy trained on synthetic data: |trained on synthetic data: "
    r"validation accuracy (?P<validation>[\d.]+)%, test accuracy )(?P<test>[\d.]+)%"
)


def parse(text):
    """Returns {label: {seed: (validation % or None, test %, total minutes, GAN minutes or None)}} of the synthetic runs.

    Later blocks win.
    """
    runs = {}
    headings = list(_HEADING.finditer(text))
    for heading, following in zip(headings, headings[1:] + [None]):
        block = text[heading.end():following.start() if following else len(text)]
        accuracy, total, gan = _ACCURACY.search(block), _TOTAL.search(block), _GAN.search(block)
        if accuracy and total:
            validation = float(accuracy["validation"]) if accuracy["validation"] else None
            runs.setdefault(heading["label"], {})[int(heading["seed"])] = (
                validation, float(accuracy["test"]), float(total["minutes"]), float(gan["minutes"]) if gan else None)
    return runs


def spread(values):
    """"mean (min-max, std)" of percentages; "-" when none."""
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.2f}% ({min(values):.2f}-{max(values):.2f}, {std:.2f})"


def main(argv):
    del argv
    with open(os.path.join(ROOT, "bench", "results.md"), encoding="utf-8") as f:
        runs = parse(f.read())
    print("preset | seeds | synthetic validation accuracy: mean (min-max, std) | synthetic test accuracy | "
          "total wall time: median (min-max)")
    for label, by_seed in runs.items():
        validation = [v for v, _, _, _ in by_seed.values() if v is not None]
        minutes = [m for _, _, m, _ in by_seed.values()]
        print(f"{label} | {','.join(map(str, sorted(by_seed)))} | {spread(validation)} | "
              f"{spread([t for _, t, _, _ in by_seed.values()])} | "
              f"{statistics.median(minutes):.1f} min ({min(minutes):.1f}-{max(minutes):.1f})")
    if _PLOT.value:
        plot(runs, _PLOT.value)


def plot(runs, path):
    """Each current preset's validation and test accuracy (mean, seeds' range) against its median GAN minutes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, name, timed, factor, shift, side in PLOTTED:
        by_seed = runs[label]
        minutes = statistics.median(g for *_, g in runs[timed].values() if g is not None) * factor + shift
        for index, (kind, marker) in enumerate((("validation", "o"), ("test", "s"))):
            values = [run[index] for run in by_seed.values() if run[index] is not None]
            mean = statistics.mean(values)
            axes.errorbar(minutes, mean, yerr=[[mean - min(values)], [max(values) - mean]], fmt=marker, capsize=3,
                          color="C0" if kind == "validation" else "C1", label=kind if label == "fast" else None)
        left = side == "left"
        axes.annotate(name, (minutes, max(r[0] for r in by_seed.values())), textcoords="offset points",
                      xytext=(-6 if left else 6, 4), ha="right" if left else "left", fontsize="small")
    axes.axhline(ORIGINAL_TEST, color="grey", linestyle="--", label="mnist-gan: test, 1 run, ~300 CPU-hours")
    axes.set_xlabel("GAN training, minutes on 2 cores (AMD EPYC; median over seeds)\n"
                    "the default's later recipes: at the two-run recipe's minutes (packing: times 1.14, a screen's ratio)", fontsize="small")
    axes.set_ylabel("classifier trained on generated digits only (%)")
    axes.set_title("Accuracy against GAN minutes (bench/results.md)")
    axes.legend(loc="lower right", fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)


if __name__ == "__main__":
    app.run(main)
