#!/usr/bin/env python3
"""Whether two folders' GAN runs trained the same: every run's metrics.csv, all but its elapsed time.

  .venv/bin/python bench/same_runs.py bench/out/<one run> bench/runs/<another>

Either folder may be an output folder or its records kept in bench/runs/. A run
counts where both folders have it and the first says it is done; the table
names each run, its rows and whether they are identical (losses, held-out
accuracy and quality to the last printed digit). Exit status 0 when every
compared run is identical, 1 otherwise.
"""

import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pipeline import training_folders  # noqa: E402


def rows(path):
    """metrics.csv without its last column (elapsed_s), which only the clock decides."""
    with open(path, newline="") as f:
        return [row[:-1] for row in csv.reader(f)]


def main(first, second):
    same = True
    print("| run | rows | identical | node |\n|---|---|---|---|")
    for folder in training_folders(first):
        with open(os.path.join(first, folder, "run.json")) as f:
            record = json.load(f)
        other = os.path.join(second, folder, "metrics.csv")
        if record.get("status") != "done" or not os.path.exists(other):
            continue
        ours, theirs = rows(os.path.join(first, folder, "metrics.csv")), rows(other)
        same &= ours == theirs
        print(f"| {folder} | {len(ours) - 1} | {'yes' if ours == theirs else '**no**'} | {record.get('node', '')} |")
    return 0 if same else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(*sys.argv[1:]))
