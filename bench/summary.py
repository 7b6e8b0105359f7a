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
_ACCURACY = re.compile(r"- test accuracy trained on synthetic data: (?P<percent>[\d.]+)%")


def parse(text):
    """Returns {label: {seed: (synthetic accuracy %, total minutes)}}, later blocks winning."""
    runs = {}
    headings = list(_HEADING.finditer(text))
    for heading, following in zip(headings, headings[1:] + [None]):
        block = text[heading.end():following.start() if following else len(text)]
        accuracy, total = _ACCURACY.search(block), _TOTAL.search(block)
        if accuracy and total:
            runs.setdefault(heading["label"], {})[int(heading["seed"])] = (
                float(accuracy["percent"]), float(total["minutes"]))
    return runs


def main(argv):
    del argv
    with open(os.path.join(ROOT, "bench", "results.md"), encoding="utf-8") as f:
        runs = parse(f.read())
    print("preset | seeds | synthetic test accuracy: mean (min-max, std) | total wall time: median (min-max)")
    for label, by_seed in runs.items():
        accuracies = [a for a, _ in by_seed.values()]
        minutes = [m for _, m in by_seed.values()]
        std = statistics.stdev(accuracies) if len(accuracies) > 1 else float("nan")
        print(f"{label} | {','.join(map(str, sorted(by_seed)))} | "
              f"{statistics.mean(accuracies):.2f}% ({min(accuracies):.2f}-{max(accuracies):.2f}, {std:.2f}) | "
              f"{statistics.median(minutes):.1f} min ({min(minutes):.1f}-{max(minutes):.1f})")


if __name__ == "__main__":
    app.run(main)
