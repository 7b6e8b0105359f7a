#!/usr/bin/env python3
"""The whole experiment for one preset and seed, from a clean output folder.

  .venv/bin/python bench/pipeline.py --preset fast --seed 0 [--compare]
  .venv/bin/python bench/pipeline.py --preset fast --seed 0 --gan-flags=--d-learning-rate=1e-4
  .venv/bin/python bench/pipeline.py --preset fast --seed 0 --compare --evaluate --real-per-digit 100

Runs `main.py --train-digits 0,...,9` and then `main.py --train-mnist`
(synthetic data; with --compare also real data and real + synthetic) as separate
processes, and prints the wall time and peak memory of each stage and the
final test accuracy. The result is appended to bench/results.md with the
machine, date and commit, and each digit's metrics.csv and run.json are kept
in bench/runs/; bench/summary.py gives the mean and spread over
seeds. A run with --gan-flags is labelled with them, so it is summarised
apart from the preset's plain runs. Set-up (virtual env, MNIST) is excluded:
run `make setup` first.
"""

import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PRESET = flags.DEFINE_string("preset", "fast", "The preset to run.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the run.")
_COMPARE = flags.DEFINE_boolean("compare", False, "Also train the classifier on real data and on real + synthetic (main.py --compare).")
_REAL_PER_DIGIT = flags.DEFINE_integer(
    "real-per-digit", 0, "Scarce real data: both stages learn from the first N training images of each digit (0: all).", lower_bound=0
)
_GAN_FLAGS = flags.DEFINE_list("gan-flags", [], "Extra main.py flags of the GAN stage (a lever to measure).")
_CLASSIFIER_FLAGS = flags.DEFINE_list("classifier-flags", [], "Extra main.py flags of the classifier stage.")
_EVALUATE = flags.DEFINE_boolean("evaluate", False, "Also run `main.py --evaluate` (the report), as `make run` does.")
_MNIST_DIR = flags.DEFINE_string("mnist-dir", os.path.join(ROOT, "data", "mnist"), "MNIST folder.")
_LOCAL_CLUSTER = flags.DEFINE_integer(
    "local-cluster", 0, "Train the GAN stage with --engine ray on a Ray cluster of this machine: a head without CPUs "
    "and this many worker nodes of one CPU each (mnistgan.local_cluster), started and stopped around the stage.",
    lower_bound=0,
)
_RESUME = flags.DEFINE_boolean(
    "resume", False, "Keep the run's folder in bench/out/ and resume it from its checkpoints (a run cut short); "
    "the block then gives this invocation's wall times and the GAN runs' own recorded time.",
)


def run_stage(args, env=None):
    """Runs main.py with `args`; returns (wall seconds, peak resident MiB) of that process."""
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=ROOT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"stage {' '.join(args)} failed with status {process.returncode}")
    return time.monotonic() - start, usage.ru_maxrss / 1024


def machine():
    """Whose wall times a block gives: cores, processor with its bfloat16 flags (they decide --precision auto), memory."""
    sys.path.insert(0, ROOT)
    from mnistgan import precision

    model, bf16_flags = precision.cpu_description()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {model} ({' '.join(bf16_flags) or 'no bfloat16 flags'}), {memory_gib:.0f} GiB, Python {platform.python_version()}"


def commit():
    """The checked-out commit (with "+changes" when the tree differs), so each block is traceable."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        # This file's own appended blocks are not a change to what runs.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def training_folders(output):
    """Each GAN run's folder under `output`, relative to it: digit-d/, digit-d/run-r/, and a conditional family's <family>/[run-r/]."""
    found = []
    for root, folders, names in os.walk(output):
        folders[:] = sorted(f for f in folders if f != "checkpoints")
        folder = os.path.relpath(root, output)
        gan_run = re.fullmatch(r"(digit-\d|[a-z-]+)(/run-\d+)?", folder) and not re.match(r"evaluator|classifier-", folder)
        if gan_run and "run.json" in names and "metrics.csv" in names:
            found.append(folder)
    return found


def keep_digit_records(output, kept):
    """Copies each GAN run's metrics.csv and run.json (a few KiB) out of the ignored bench/out/.

    The README cites them (losses over training, best Fréchet distance), so they are committed.
    """
    shutil.rmtree(kept, ignore_errors=True)
    for folder in training_folders(output):
        source, target = os.path.join(output, folder), os.path.join(kept, folder)
        os.makedirs(target)
        for name in ("metrics.csv", "run.json"):
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))


def recall_lines(output):
    """The report's per-digit recall on validation (goal: every digit at least 0.80): generator.keras, and the mixture."""
    with open(os.path.join(output, "report.json")) as f:
        digits = json.load(f)["digits"]
    lines = []
    for measured, what in (("generated", "generator"), ("stream", "the classifier's mixture")):
        recalls = {d["digit"]: d[measured]["recall"] for d in digits if measured in d}
        if recalls:
            text = ", ".join(f"{digit}: {recall:.3f}" for digit, recall in sorted(recalls.items()))
            lines.append(f"- {what} recall on validation (`--evaluate`): {text}; lowest {min(recalls.values()):.3f}")
    return lines


def summary_line(output):
    """The report's family row: means over the digits of what the classifier draws (the README's family table)."""
    with open(os.path.join(output, "report.json")) as f:
        s = json.load(f)["summary"]
    minutes = "unrecorded" if s["gan_core_minutes"] is None else f"{s['gan_core_minutes']:.1f}"
    return (
        f"- family {s['family']}, {s['runs']} GAN run(s), {minutes} GAN core-minutes; mean over the digits of "
        f"{'what the classifier draws' if s['measured'] == 'stream' else 'the kept generators'} (`--evaluate`): "
        f"Fréchet distance {s['frechet_distance']:.2f}, class precision {s['class_precision']:.3f}, "
        f"precision {s['precision']:.3f}, recall {s['recall']:.3f}"
    )


def gan_time_line(output):
    """The GAN runs' own recorded wall time and core-minutes (run.json, summed over every session they trained in)."""
    seconds = core_seconds = 0.0
    count = 0
    for folder in training_folders(output):
        with open(os.path.join(output, folder, "run.json")) as f:
            record = json.load(f)
        count += 1
        seconds += record.get("wall_time_s", 0.0)
        core_seconds += record.get("wall_time_s", 0.0) * record.get("cores", 1)
    return (
        f"the {count} GAN runs recorded {seconds / 60:.1f} min of training between them, "
        f"{core_seconds / 60:.1f} core-minutes (runs side by side in worker processes overlap in wall time)"
    )


def main(argv):
    del argv
    # Where a run trains (--address) is no setting of the experiment: it names neither the block nor the folder.
    extra = [flag for flag in [*_GAN_FLAGS.value, *_CLASSIFIER_FLAGS.value] if not flag.startswith("--address")]
    # Both stages learn from the same real images; the block and the folder are named for them.
    scarce = [f"--real-per-digit={_REAL_PER_DIGIT.value}"] if _REAL_PER_DIGIT.value else []
    extra = [*scarce, *extra]
    if _LOCAL_CLUSTER.value:
        extra.append("--engine=ray")
    label = " ".join([_PRESET.value, *(["with"] if extra else []), *extra])
    folder = re.sub(r"[^A-Za-z0-9.]+", "-", label.replace(" with ", " ")).strip("-")
    output = os.path.join(ROOT, "bench", "out", f"{folder}-seed{_SEED.value}")
    if not _RESUME.value:
        shutil.rmtree(output, ignore_errors=True)
    common = ["--preset", _PRESET.value, "--seed", str(_SEED.value), "--output-dir", output, "--mnist-dir", _MNIST_DIR.value]
    stages = {
        "GAN training (10 digits)": ["--train-digits", "0,1,2,3,4,5,6,7,8,9", *common, *scarce, *_GAN_FLAGS.value],
        "classifier": ["--train-mnist", *(["--compare"] if _COMPARE.value else []), *common, *scarce, *_CLASSIFIER_FLAGS.value],
    }
    if _EVALUATE.value:
        stages["report (--evaluate)"] = ["--evaluate", *common]
    measured = {}
    for name, args in stages.items():
        if name.startswith("GAN") and _LOCAL_CLUSTER.value:
            sys.path.insert(0, ROOT)
            from mnistgan import local_cluster

            started = time.monotonic()
            cluster = local_cluster.LocalCluster(workers=_LOCAL_CLUSTER.value, cpus=1)
            print(f"a local Ray cluster of {_LOCAL_CLUSTER.value} one-CPU nodes started in {time.monotonic() - started:.1f} s", flush=True)
            try:
                measured[name] = run_stage([*args, "--engine", "ray", "--address", cluster.address], cluster.env)
            finally:
                cluster.stop()
        else:
            measured[name] = run_stage(args)
    keep_digit_records(output, os.path.join(ROOT, "bench", "runs", os.path.basename(output)))
    with open(os.path.join(output, "results.jsonl")) as f:
        records = {r["data_source"]: r for r in map(json.loads, f)}
    total = sum(seconds for seconds, _ in measured.values())
    lines = [
        f"### preset {label}, seed {_SEED.value} ({datetime.date.today()}; {machine()}; commit {commit()})",
        "",
        "| stage | wall time | peak memory |",
        "|---|---|---|",
        *(f"| {name} | {s / 60:.1f} min | {mib:.0f} MiB |" for name, (s, mib) in measured.items()),
        f"| **total** | **{total / 60:.1f} min** | |",
        "",
        *([f"- resumed (`--resume`): the times above are this invocation's; {gan_time_line(output)}"] if _RESUME.value else []),
        *(
            f"- trained on {source} data: validation accuracy {r['validation_accuracy']:.2%}, "
            f"test accuracy {r['test_accuracy']:.2%}"
            for source, r in records.items()
        ),
        *([*recall_lines(output), summary_line(output)] if _EVALUATE.value else []),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(ROOT, "bench", "results.md"), "a", encoding="utf-8") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    app.run(main)
