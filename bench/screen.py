#!/usr/bin/env python3
"""Screen GAN techniques on a few digits: generator quality on validation images, side by side.

  .venv/bin/python bench/screen.py --digits 1,6,7,8 --seeds 0 \
      --variant "base=" --variant "diffaug=--augment=translation,cutout" --variant "mbstd=--minibatch-std-group=4"

Each variant (label=main.py flags, comma-separated) trains the listed digits with
`main.py --train-digits` (preset --preset, worker processes as main.py chooses)
into bench/out/screen/<label>-seed<N>/, then each digit's kept generator.keras is
measured against that digit's validation images with the shared evaluator
(Fréchet distance, class precision, k-NN precision and recall; --samples
generated images, as `--evaluate` measures), and so is the mixture the preset's
classifier would draw from (its snapshots, runs and noise scale: the last three columns;
its class precision is the share of its images the evaluator reads as the digit), and with
--rejection-candidates that mixture filtered by discriminator rejection sampling. The
evaluator is trained once in bench/out/screen/evaluator/ and shared by every variant, so
their numbers are comparable. Test images are never read. Each variant and seed appends a block to
bench/screen.md; a finished variant and seed is measured again, not retrained.
"""

import datetime
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app, flags  # noqa: E402

_DIGITS = flags.DEFINE_list("digits", ["1", "6", "7", "8"], "Digits to train and measure.")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds of each variant.")
_PRESET = flags.DEFINE_string("preset", "fast", "main.py preset the variants start from.")
_VARIANT = flags.DEFINE_multi_string("variant", ["base="], "label=main.py flags (comma-separated); repeatable.")
_REJECTION = flags.DEFINE_list(
    "rejection-candidates", [], "Also measure the mixture filtered by discriminator rejection sampling, for each K listed."
)
_SAMPLES = flags.DEFINE_integer("samples", 8000, "Generated images per digit that are measured.")
_MNIST_DIR = flags.DEFINE_string("mnist-dir", os.path.join(ROOT, "data", "mnist"), "MNIST folder.")
SCREEN_DIR = os.path.join(ROOT, "bench", "out", "screen")
METRICS = ("frechet_distance", "class_precision", "precision", "recall")


def main_py(*args):
    """Runs main.py; returns its wall seconds."""
    start = time.monotonic()
    subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args, "--mnist-dir", _MNIST_DIR.value], check=True)
    return time.monotonic() - start


def measure(output_dir, digits, mnist, evaluator, seed):
    """{digit: (Quality of generator.keras, {K: Quality of the classifier's mixture filtered from K candidates})}.

    Measured on the digit's validation images; K 1 is the mixture as the preset's classifier draws it.
    """
    import dataclasses

    from mnistgan import config as config_lib, data, evaluation, generators

    kept = generators.kept_samplers(output_dir, digits)
    stream = config_lib.PRESETS[_PRESET.value][1]
    mixtures = {}
    for candidates in [1, *map(int, _REJECTION.value)]:
        streamed = dataclasses.replace(stream, rejection_candidates=candidates)
        mixtures[candidates] = dict(zip(digits, generators.classifier_samplers(output_dir, streamed, digits)))
    qualities = {}
    for digit, sampler in zip(digits, kept):
        validation = data.to_float(data.digit_images(mnist, "validation", digit))
        generated = sampler.draw(_SAMPLES.value, seed=seed * 10 + digit + 1000)
        by_candidates = {}
        for candidates, samplers in mixtures.items():
            mixture = generators.draw_mixture(samplers[digit], _SAMPLES.value, seed=seed * 10 + digit + 2000)
            by_candidates[candidates] = evaluation.measure(evaluator, validation, mixture, digit)
        qualities[digit] = (evaluation.measure(evaluator, validation, generated, digit), by_candidates)
    return qualities


def block(label, flags_text, seed, seconds, qualities, runs):
    """The markdown block bench/screen.md gains for one variant and seed."""
    from mnistgan import outputs

    lines = [
        f"### {label} (`{flags_text or 'preset only'}`), preset {_PRESET.value}, seed {seed} ({datetime.date.today()})",
        "",
        f"GAN stage {seconds / 60:.1f} min for digits {','.join(map(str, qualities))}; {_SAMPLES.value} samples per digit, "
        "validation images.",
        "",
        "| digit | best step | Fréchet distance | class precision | precision | recall | mixture class precision | mixture precision | mixture recall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def values(kept, mixtures):
        return [getattr(kept, m) for m in METRICS] + [mixtures[1].class_precision, mixtures[1].precision, mixtures[1].recall]

    for digit, (kept, mixtures) in qualities.items():
        record = outputs.read_json(os.path.join(outputs.digit_dir(runs, digit), "run.json")) or {}
        lines.append(f"| {digit} | {record.get('best_step')} | {' | '.join(f'{v:.3f}' for v in values(kept, mixtures))} |")
    means = [sum(column) / len(qualities) for column in zip(*(values(*q) for q in qualities.values()))]
    lines += [f"| mean | | {' | '.join(f'{v:.3f}' for v in means)} |", ""]
    if _REJECTION.value:
        lines += [
            "The mixture filtered by discriminator rejection sampling (each image chosen from K by its run's D):",
            "",
            "| digit | K | Fréchet distance | class precision | precision | recall |",
            "|---|---|---|---|---|---|",
        ]
        for candidates in qualities[next(iter(qualities))][1]:
            rows = {digit: mixtures[candidates] for digit, (_, mixtures) in qualities.items()}
            for digit, quality in rows.items():
                lines.append(f"| {digit} | {candidates} | {' | '.join(f'{getattr(quality, m):.3f}' for m in METRICS)} |")
            mean = " | ".join(f"{sum(getattr(q, m) for q in rows.values()) / len(rows):.3f}" for m in METRICS)
            lines.append(f"| mean | {candidates} | {mean} |")
        lines.append("")
    return "\n".join(lines)


def main(argv):
    del argv
    from mnistgan import config as config_lib, data, evaluation, outputs

    digits = list(config_lib.parse_digits(_DIGITS.value, "--digits"))
    mnist = data.load(_MNIST_DIR.value, fetchers=())
    evaluator = evaluation.load_or_train_evaluator(SCREEN_DIR, mnist, seed=0)
    for variant in _VARIANT.value:
        label, _, flags_text = variant.partition("=")
        extra = [f for f in flags_text.split(",--") if f]
        extra = [f if f.startswith("--") else "--" + f for f in extra]
        for seed in map(int, _SEEDS.value):
            runs = os.path.join(SCREEN_DIR, f"{label}-seed{seed}")
            if not os.path.exists(outputs.evaluator_files(runs)[0]):
                shutil.copytree(outputs.evaluator_dir(SCREEN_DIR), outputs.evaluator_dir(runs))
            seconds = main_py("--train-digits", ",".join(map(str, digits)), "--preset", _PRESET.value, "--seed", str(seed),
                              "--output-dir", runs, *extra)  # fmt: skip
            text = block(label, flags_text, seed, seconds, measure(runs, digits, mnist, evaluator, seed), runs)
            print(text, flush=True)
            with open(os.path.join(ROOT, "bench", "screen.md"), "a", encoding="utf-8") as f:
                f.write(text + "\n")


if __name__ == "__main__":
    app.run(main)
