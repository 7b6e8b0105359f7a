#!/usr/bin/env python3
"""Each digit's noise scale for the classifier's stream, chosen on validation from its mixture's class precision.

  .venv/bin/python bench/noise_scales.py --output-dir bench/out/default-seed0 [--preset default]

For each digit of a trained folder and each scale of --scales, the mixture the
preset's classifier draws (its snapshots and runs; the folder's own evaluator)
is measured against the digit's validation images: Fréchet distance, class
precision (the share the evaluator reads as the digit), k-NN precision and
recall. The rule, fixed before any classifier is trained on its choice: a digit
whose class precision at the preset's scale is below --min-class-precision takes
the largest smaller scale that reaches it (the smallest scale measured if none
does); every other digit keeps the preset's scale. It prints the table and the
`--digit-noise-scales` value, and appends both to bench/noise_scales.md. Test
images are never read; whether the choice helps is decided by the classifier's
validation accuracy (`main.py --train-mnist --digit-noise-scales ...`).
"""

import datetime
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app, flags  # noqa: E402

_OUTPUT_DIR = flags.DEFINE_string("output-dir", None, "A folder with trained digits (main.py --train-digits).", required=True)
_PRESET = flags.DEFINE_string("preset", "default", "The preset whose classifier stream (snapshots, noise scale) is measured.")
_SCALES = flags.DEFINE_list("scales", ["0.8", "0.9", "1.0", "1.1", "1.2"], "Noise scales to measure.")
_MIN_CLASS_PRECISION = flags.DEFINE_float("min-class-precision", 0.98, "The class precision a digit's scale must reach.")
_SAMPLES = flags.DEFINE_integer("samples", 8000, "Generated images per digit and scale that are measured.")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the drawn images.")
_MNIST_DIR = flags.DEFINE_string("mnist-dir", os.path.join(ROOT, "data", "mnist"), "MNIST folder.")
METRICS = ("frechet_distance", "class_precision", "precision", "recall")


def choose(class_precisions, base, floor):
    """The rule: `base`, or for a digit below `floor` at `base` the largest smaller scale that reaches it.

    Args:
      class_precisions: {scale: class precision} of one digit.
    """
    if class_precisions[base] >= floor:
        return base
    smaller = sorted((s for s in class_precisions if s < base), reverse=True)
    return next((s for s in smaller if class_precisions[s] >= floor), min(class_precisions))


def main(argv):
    del argv
    import dataclasses

    from mnistgan import config as config_lib, data, evaluation, generators

    mnist = data.load(_MNIST_DIR.value, fetchers=())
    evaluator = evaluation.load_or_train_evaluator(_OUTPUT_DIR.value, mnist, seed=0)
    stream = config_lib.PRESETS[_PRESET.value][1]
    scales = sorted({float(s) for s in _SCALES.value} | {stream.noise_scale})
    lines = [
        f"## {_OUTPUT_DIR.value}, preset {_PRESET.value} stream, {datetime.date.today()}",
        "",
        f"`bench/noise_scales.py --output-dir {_OUTPUT_DIR.value} --preset {_PRESET.value}`; {_SAMPLES.value} images per "
        f"digit and scale against the digit's validation images; cells: {', '.join(METRICS)}.",
        "",
        "| digit | " + " | ".join(f"scale {s}" for s in scales) + " | chosen |",
        "|---" * (len(scales) + 2) + "|",
    ]
    chosen = {}
    for digit in generators.ALL_DIGITS:
        validation = data.to_float(data.digit_images(mnist, "validation", digit))
        cells, class_precisions = [], {}
        # The digit's generators, loaded once; each scale draws from them through its own Samplers.
        loaded = generators.classifier_samplers(_OUTPUT_DIR.value, dataclasses.replace(stream, digit_noise_scales="", rejection_candidates=1), (digit,))[0]
        for scale in scales:
            samplers = [generators.Sampler(s.model, s.entry, scale) for s in loaded]
            mixture = generators.draw_mixture(samplers, _SAMPLES.value, seed=_SEED.value * 10 + digit)
            quality = evaluation.measure(evaluator, validation, mixture, digit).as_dict()
            class_precisions[scale] = quality["class_precision"]
            cells.append(" / ".join(f"{quality[m]:.3f}" if m != "frechet_distance" else f"{quality[m]:.1f}" for m in METRICS))
        chosen[digit] = choose(class_precisions, stream.noise_scale, _MIN_CLASS_PRECISION.value)
        lines.append(f"| {digit} | " + " | ".join(cells) + f" | {chosen[digit]} |")
        print(lines[-1], flush=True)
    value = ",".join(f"{d}={s}" for d, s in chosen.items() if s != stream.noise_scale)
    lines += ["", f"Rule (class precision >= {_MIN_CLASS_PRECISION.value}): `--digit-noise-scales '{value}'`", ""]
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(ROOT, "bench", "noise_scales.md"), "a", encoding="utf-8") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    app.run(main)
