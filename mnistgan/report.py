"""`--evaluate`: measure every trained generator and write output/report.md and report.json."""

import glob
import os
import time

import numpy as np

from mnistgan import classifier, data, evaluation, outputs
from mnistgan.errors import UserError

METRICS = ("frechet_distance", "class_precision", "mean_confidence", "precision", "recall")


def trained_digits(output_dir):
    return [d for d in range(10) if os.path.exists(outputs.generator_path(output_dir, d))]


def latest_classifier_results(output_dir):
    """The newest results.jsonl record of each data source, in file order."""
    return {record["data_source"]: record for record in classifier.read_results(output_dir)}


def digit_record(output_dir, digit):
    """The digit's run.json ({} when there is none)."""
    path = os.path.join(outputs.digit_dir(output_dir, digit), "run.json")
    return outputs.read_json(path, classifier.retrain_digit(digit)) or {}


def measure_digit(config, mnist, evaluator, digit, generator, record):
    """One report row: the generator's quality and the real-vs-real reference.

    The reference is min(eval_samples, n) of the digit's n real training images
    (disjoint from validation), measured as the generated ones are.
    """
    validation = data.to_float(data.digit_images(mnist, "validation", digit))
    generated = evaluation.generate(generator, config.eval_samples, seed=config.seed * 10 + digit)
    quality = evaluation.measure(evaluator, validation, generated, digit)
    train = data.digit_images(mnist, "train", digit)
    picked = np.random.default_rng([config.seed, digit]).choice(len(train), min(config.eval_samples, len(train)), replace=False)
    reference = evaluation.measure(evaluator, validation, data.to_float(train[picked]), digit)
    samples = sorted(glob.glob(os.path.join(outputs.digit_dir(config.output_dir, digit), "samples", "step-*.png")))
    return {
        "digit": digit,
        "steps": record.get("steps_done"),
        "wall_time_s": record.get("wall_time_s"),
        "best_step": record.get("best_step"),
        "declined": bool(record.get("declined")),
        "generated": quality.as_dict(),
        "real_reference": reference.as_dict(),
        "reference_images": len(picked),
        "latest_samples": os.path.relpath(samples[-1], config.output_dir) if samples else None,
    }


def _cell(row, metric):
    return f"{row['generated'][metric]:.3f} ({row['real_reference'][metric]:.3f})"


def markdown(report):
    lines = [
        "# mnistgan report",
        "",
        f"Generated {report['created']}. Each digit: {report['eval_samples']} generated images vs that digit's "
        f"validation images (precision and recall: the first {evaluation.KNN_SAMPLES}). In brackets, the "
        f"reference: {report['eval_samples']} of the digit's real training images, or all of them where it has "
        f"fewer (column 'reference images'), vs the same validation images: what a perfect generator would score "
        f"with that many images. Evaluator test accuracy: {report['evaluator_test_accuracy']:.2%}.",
        "",
        "| digit | steps | wall time | best step | Fréchet distance | class precision | confidence | precision | recall "
        "| reference images |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["digits"]:
        minutes = "" if row["wall_time_s"] is None else f"{row['wall_time_s'] / 60:.1f} min"
        flag = " (quality fell late)" if row["declined"] else ""
        cells = " | ".join(_cell(row, m) for m in METRICS)
        lines.append(
            f"| {row['digit']} | {row['steps']} | {minutes} | {row['best_step'] or ''}{flag} | {cells} | "
            f"{row['reference_images']} |"
        )
    if report["classifiers"]:
        lines += ["", "## Classifier (MNIST test split)", "", "| training data | test accuracy | lowest digit | impressions | wall time |", "|---|---|---|---|---|"]
        for source, r in report["classifiers"].items():
            worst = r["per_digit_accuracy"][r["min_digit"]]
            lines.append(
                f"| {source} | {r['test_accuracy']:.2%} | {r['min_digit']} ({worst:.2%}) | {r['impressions']:,} | "
                f"{r['wall_time_s'] / 60:.1f} min |"
            )
    lines += ["", "## Latest samples", ""]
    for row in report["digits"]:
        if row["latest_samples"]:
            lines.append(f"Digit {row['digit']}: ![digit {row['digit']}]({row['latest_samples']})")
            lines.append("")
    return "\n".join(lines) + "\n"


def evaluate(config, mnist, evaluator=None):
    """Measures the digits in `config.digits` (default: every trained one); writes both reports."""
    digits = list(config.digits) or trained_digits(config.output_dir)
    if not digits:
        raise UserError(f"no trained generators in {config.output_dir}; train them first: ./main.py --train-digits 0,1,2,3,4,5,6,7,8,9")
    # Every file it reads is checked before anything is trained or written.
    generators = classifier.load_generators(config.output_dir, digits)
    records = [digit_record(config.output_dir, d) for d in digits]
    classifiers = latest_classifier_results(config.output_dir)
    evaluator = evaluator or evaluation.load_or_train_evaluator(config.output_dir, mnist, seed=config.seed)
    evaluator_record = evaluation.read_evaluator_record(config.output_dir) or {}
    report = {
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "eval_samples": config.eval_samples,
        "evaluator_test_accuracy": evaluator_record.get("test_accuracy", float("nan")),
        "digits": [measure_digit(config, mnist, evaluator, *args) for args in zip(digits, generators, records)],
        "classifiers": classifiers,
    }
    outputs.write_json(os.path.join(config.output_dir, "report.json"), report)
    text = markdown(report)
    outputs.write_text(os.path.join(config.output_dir, "report.md"), text)
    print(text.split("## Latest samples")[0].rstrip())
    print(f"\nwritten: {os.path.join(config.output_dir, 'report.md')} and report.json")
    return 0
