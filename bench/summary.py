#!/usr/bin/env python3
"""Mean and spread over seeds of the runs recorded in bench/results.md.

  .venv/bin/python bench/summary.py

Groups the blocks that bench/pipeline.py appended by their label (the text between
"preset" and the seed, e.g. "fast"). When a seed was run more than once under the
same label, its latest block counts.
"""

import os
import re
import statistics

from absl import app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HEADING = re.compile(r"^### preset (?P<label>.+), seed (?P<seed>\d+) \(", re.MULTILINE)
_TOTAL = re.compile(r"\| \*\*total\*\* \| \*\*(?P<minutes>[\d.]+) min\*\*")
# Blocks before validation accuracy was recorded have only the test figure.
_ACCURACY = re.compile(
    r"- (?:test accuracy trained on synthetic data: |trained on synthetic data: "
    r"validation accuracy (?P<validation>[\d.]+)%, test accuracy )(?P<test>[\d.]+)%"
)


def parse(text):
    """Returns {label: {seed: (validation % or None, test %, total minutes)}} of the synthetic runs.

    Later blocks win.
    """
    runs = {}
    headings = list(_HEADING.finditer(text))
    for heading, following in zip(headings, headings[1:] + [None]):
        block = text[heading.end():following.start() if following else len(text)]
        accuracy, total = _ACCURACY.search(block), _TOTAL.search(block)
        if accuracy and total:
            validation = float(accuracy["validation"]) if accuracy["validation"] else None
            runs.setdefault(heading["label"], {})[int(heading["seed"])] = (
                validation, float(accuracy["test"]), float(total["minutes"]))
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
        validation = [v for v, _, _ in by_seed.values() if v is not None]
        minutes = [m for _, _, m in by_seed.values()]
        print(f"{label} | {','.join(map(str, sorted(by_seed)))} | {spread(validation)} | "
              f"{spread([t for _, t, _ in by_seed.values()])} | "
              f"{statistics.median(minutes):.1f} min ({min(minutes):.1f}-{max(minutes):.1f})")


if __name__ == "__main__":
    app.run(main)
