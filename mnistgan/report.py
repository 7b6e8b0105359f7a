"""The report a person reads: output/report.md, with its pictures, and report.json.

`--evaluate` measures every trained generator against the real validation
images (and, for a classifier that draws a snapshot mixture, that mixture), draws each digit's latent walk and training curves, and gathers what
the other commands left in output/: the classifier comparison and confusion
heatmaps, the sample grids and evolution strips. Pictures are linked by paths
relative to output/, so the folder can be moved or shared whole. A piece that
is missing (a digit not trained, no classifier yet) is named in the report
with the command that makes it.
"""

import dataclasses
import os
import re
import time

import numpy as np
from absl import logging

from mnistgan import config as config_lib, data, evaluation, generators, locks, outputs, plots, precision, sampling
from mnistgan.errors import UserError

METRICS = ("frechet_distance", "class_precision", "mean_confidence", "precision", "recall")
ALL_DIGITS = tuple(range(10))


def latest_classifier_results(output_dir):
    """The newest results.jsonl record of each data source, in file order."""
    return {record["data_source"]: record for record in outputs.read_results(output_dir)}


def _relative(output_dir, path):
    return os.path.relpath(path, output_dir) if path and os.path.exists(path) else None


def digit_record(output_dir, digit, run=1):
    """The run.json of the digit's run `run` ({} when there is none); `digit` may be a conditional family's name."""
    path = outputs.training_files(outputs.digit_dir(output_dir, digit, run)).record
    return outputs.read_json(path, generators.retrain_digit(digit)) or {}


def _arithmetic(record):
    """The precision a run trained in, as --precision names it ("float32", "bfloat16"; "" where not recorded)."""
    return precision.shown(record.get("config", {}).get("precision", ""))


def measure_digit(config, mnist, evaluator, digit, sampler, record, unit=None):
    """One report row: the quality of the digit's kept generator (a `generators.Sampler`) and the real-vs-real reference.

    The reference is min(eval_samples, n) of the digit's n real training images
    (disjoint from validation), measured as the generated ones are.
    """
    validation = data.to_float(data.digit_images(mnist, "validation", digit))
    generated = sampler.draw(config.eval_samples, seed=config.seed * 10 + digit)
    quality = evaluation.measure(evaluator, validation, generated, digit)
    train = data.digit_images(mnist, "train", digit)
    picked = np.random.default_rng([config.seed, digit]).choice(len(train), min(config.eval_samples, len(train)), replace=False)
    reference = evaluation.measure(evaluator, validation, data.to_float(train[picked]), digit)
    return {
        "digit": digit,
        "steps": record.get("steps_done"),
        "wall_time_s": record.get("wall_time_s"),
        "arithmetic": _arithmetic(record),
        "best_step": record.get("best_step"),
        "declined": bool(record.get("declined")),
        "generated": quality.as_dict(),
        "real_reference": reference.as_dict(),
        "reference_images": len(picked),
        "latest_samples": _relative(config.output_dir, outputs.latest_sample_path(config.output_dir, digit if unit is None else unit)),
    }


def stream_samplers(config, digits):
    """{digit: [Sampler]} the synthetic classifier draws from, when that is more than the kept generator at N(0, 1).

    None when it draws from the kept generator alone at noise 1 (the table above
    measures that), or when a digit kept no snapshots for a mixture (the report
    then says so); a damaged or missing generator file is refused.
    """
    try:
        if generators.stream_entries(config.output_dir, config.classifier, digits) is None:
            return None
        samplers = generators.classifier_samplers(config.output_dir, config.classifier, digits)
    except generators.MissingGenerators as e:
        logging.warning("the classifier's stream is not measured: %s", e)
        return None
    return dict(zip(digits, samplers))


def measure_stream(config, mnist, evaluator, digit, samplers):
    """The quality of what the synthetic classifier draws for `digit`: its samplers in equal shares."""
    validation = data.to_float(data.digit_images(mnist, "validation", digit))
    generated = generators.draw_mixture(samplers, config.eval_samples, config.seed * 10 + digit)
    quality = evaluation.measure(evaluator, validation, generated, digit)
    return {"generators": len(samplers), "noise_scale": samplers[0].noise_scale, **quality.as_dict()}


def digit_pictures(output_dir, digit, unit=None):
    """Paths, relative to `output_dir`, of the digit's pictures (None for one not drawn).

    `unit` is what trained the digit's kept generator (generators.kept_unit): for
    a conditional family, its grid (a row per digit), strip and curves are shared.
    """
    unit = digit if unit is None else unit
    return {
        "samples": _relative(output_dir, outputs.latest_sample_path(output_dir, unit)),
        "evolution": _relative(output_dir, outputs.evolution_path(output_dir, unit)),
        "latent_walk": _relative(output_dir, outputs.latent_walk_path(output_dir, digit, unit)),
        "curves": _relative(output_dir, outputs.curves_path(output_dir, unit)),
    }


def build(output_dir, rows, evaluator_record, eval_samples, compared=None, compared_results=None, gan_recipes=None):
    """The report as a JSON-ready dict: measured digits with their pictures, classifiers, what is missing,
    this folder's family summary and those of the folders in `compared` ({folder: summary}), and the
    comparison of data sources over this folder's results and those of `compared_results` ({folder: records}),
    whose folders' GAN settings are `gan_recipes` ({folder: `gan_recipe`}; read when None)."""
    classifiers = latest_classifier_results(output_dir)
    for source, record in classifiers.items():
        record["confusion_picture"] = _relative(output_dir, outputs.confusion_path(output_dir, source))
    for row in rows:
        row["pictures"] = digit_pictures(output_dir, row["digit"], row.get("unit"))
    summary = family_summary(output_dir, rows, classifiers, evaluator_record)
    compared = compared or {}
    minutes = {output_dir: summary["gan_core_minutes"], **{folder: s.get("gan_core_minutes") for folder, s in compared.items()}}
    results = {output_dir: outputs.read_results(output_dir), **(compared_results or {})}
    return {
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "eval_samples": eval_samples,
        "evaluator_test_accuracy": evaluator_record.get("test_accuracy", float("nan")),
        "evaluator_validation_accuracy": evaluator_record.get("validation_accuracy"),
        # The real images the evaluator learned from (0: all): a folder's GANs are steered by one of their own N.
        "evaluator_real_per_digit": evaluator_record.get("real_per_digit") or 0,
        "digits": rows,
        "untrained_digits": [d for d in ALL_DIGITS if d not in generators.trained_digits(output_dir)],
        "training_digits": locks.digits_in_training(output_dir),
        "classifiers": classifiers,
        "missing_classifiers": [s for s in config_lib.DATA_SOURCES if s not in classifiers],
        "largest_confusions": largest_confusions(classifiers),
        "quality_curves": _relative(output_dir, outputs.quality_curves_path(output_dir)),
        "summary": summary,
        "compared": compared,
        "data_table": data_table(results, minutes, {f: "this folder" if f == output_dir else f for f in results}, gan_recipes),
    }


# Rows of the table of the classifiers' largest confusions.
CONFUSIONS_SHOWN = 8


def largest_confusions(classifiers, count=CONFUSIONS_SHOWN):
    """The test images most often read as another digit, beside each classifier's count of the same mistake.

    Args:
      classifiers: {data source: results.jsonl record with its 10x10 "confusion" (rows: true digit)}.

    Returns:
      [{"true": d, "read_as": e, "counts": {source: images}}], the `count` pairs with the most images for any
      one classifier (the generated-only one's first where it exists), largest first; [] without classifiers.
    """
    matrices = {source: np.asarray(r["confusion"], np.int64) for source, r in classifiers.items() if "confusion" in r}
    if not matrices:
        return []
    lead = matrices.get("synthetic", next(iter(matrices.values())))
    pairs = [(t, p) for t in range(10) for p in range(10) if t != p]
    ranked = sorted(pairs, key=lambda pair: (-lead[pair], -max(m[pair] for m in matrices.values()), pair))
    return [
        {"true": t, "read_as": p, "counts": {source: int(m[t, p]) for source, m in matrices.items()}}
        for t, p in ranked[:count]
        if max(m[t, p] for m in matrices.values()) > 0
    ]


SUMMARY_METRICS = ("frechet_distance", "class_precision", "precision", "recall")


def family_summary(output_dir, rows, classifiers, evaluator_record=None):
    """This folder's row of the model-family comparison (README, `--compare-with`).

    The quality columns are means over the measured digits of what the synthetic
    classifier draws ("stream") when the report measured it, else of each digit's
    kept generator ("generated"), by the evaluator of `evaluator_record` (its
    evaluator.json), whose images per digit (0: all) the row notes: columns measured
    by evaluators of other images do not compare. GAN core-minutes sum each run's
    recorded wall time times the cores it trained on (None when a run predates that record).
    """
    records = generators.training_records(output_dir, [row["digit"] for row in rows])
    timed = [r for r in records if "cores" in r and "wall_time_s" in r]
    measured = "stream" if rows and all("stream" in row for row in rows) else "generated"
    synthetic = classifiers.get("synthetic", {})
    return {
        "family": "+".join(sorted({str((r.get("config") or {}).get("family", "dcgan")) for r in records})) or "?",
        "runs": len(records),
        "gan_core_minutes": sum(r["wall_time_s"] * r["cores"] for r in timed) / 60 if records and len(timed) == len(records) else None,
        "measured": measured,
        "digits": len(rows),
        **{m: float(np.mean([row[measured][m] for row in rows])) if rows else None for m in SUMMARY_METRICS},
        "evaluator_real_per_digit": (evaluator_record or {}).get("real_per_digit") or 0,
        "validation_accuracy": synthetic.get("validation_accuracy"),
        "test_accuracy": synthetic.get("test_accuracy"),
        # The command that trained the folder's runs (run 1 of its first digit).
        "command": next((r["command"] for r in records if r.get("command")), None),
    }


def compared_summaries(folders):
    """{folder: summary} read from other output folders' report.json (`--compare-with`).

    Raises:
      UserError: one line naming a folder without a report, or a damaged one.
    """
    summaries = {}
    for folder in folders:
        path = outputs.report_path(folder, "json")
        remedy = f"write it with ./main.py --evaluate --output-dir {folder}"
        record = outputs.read_json(path, remedy, {"summary": dict})
        if record is None:
            raise UserError(f"--compare-with: {path} does not exist; {remedy}")
        number = (int, float, type(None))
        fields = {"family": str, "runs": int, "digits": int, "gan_core_minutes": number, "command": (str, type(None)), **dict.fromkeys(SUMMARY_METRICS, number)}
        fields["evaluator_real_per_digit"] = (int, outputs.NONE)  # Absent from reports written before it was noted.
        outputs.check_fields(record["summary"], f"{path} summary", remedy, fields | dict.fromkeys(("validation_accuracy", "test_accuracy"), number))
        summaries[folder] = record["summary"]
    return summaries


# ---- real, generated, and both ----

# The rows of that table: each data source, as the report names it.
DATA_ROWS = (("real", "real only"), ("synthetic", "generated only"), ("real+synthetic", "real + generated"))
# Recorded settings that leave what is learned unchanged, so seeds that differ in them are one experiment: the
# arithmetic (the machine decides it), how often a run writes or checks, and the images per digit (the columns).
GAN_NOT_RECIPE = ("precision", "sample_every", "checkpoint_every", "heldout_samples", "real_per_digit")
CLASSIFIER_NOT_RECIPE = ("precision", "eval_every", "checkpoint_every", "real_per_digit")
# Classifier settings only its generated images' stream reads (and the share, only real+synthetic batches).
STREAM_SETTINGS = ("noise_scale", "digit_noise_scales", "snapshot_mixture", "rejection_candidates")


def recorded_settings(config, config_class, ignored=()):
    """{setting: value} of a recorded config (a run.json's or results.jsonl's "config") but `ignored`: a setting
    it lacks at the value runs had before it was recorded, or "not recorded"."""
    before = config_lib.values_before_recorded(config_class)
    return {f.name: config.get(f.name, before.get(f.name, "not recorded")) for f in dataclasses.fields(config_class) if f.name not in ignored}


def gan_recipe(output_dir):
    """The GAN settings behind a folder's generators, {setting: value} ({} without any); a setting its runs
    differ in holds their values joined by " or "."""
    values = {}
    for record in generators.training_records(output_dir):
        for name, value in recorded_settings(record.get("config") or {}, config_lib.GanConfig, GAN_NOT_RECIPE).items():
            values.setdefault(name, [])
            values[name] += [] if value in values[name] else [value]
    return {name: seen[0] if len(seen) == 1 else " or ".join(map(str, seen)) for name, seen in values.items()}


def _recipe(record, gan):
    """What decides a results.jsonl record's figure besides its seed and N, {setting: value}: the settings of its
    classifier that its data source reads and, for a source that draws generated images, `gan` (its folder's)."""
    source = record["data_source"]
    ignored = CLASSIFIER_NOT_RECIPE + (() if source in config_lib.GENERATED_SOURCES else STREAM_SETTINGS)
    ignored += () if source == "real+synthetic" else ("synthetic_share",)
    classifier = recorded_settings(record.get("config") or {}, config_lib.ClassifierConfig, ignored)
    recipe = {f"classifier {k}": v for k, v in classifier.items()}
    return recipe | {f"GAN {k}": v for k, v in gan.items() if source in config_lib.GENERATED_SOURCES}


def _difference(recipe, expected):
    """The settings `recipe` differs from `expected` in, for one line: "GAN family mlp, not dcgan" (at most three,
    the family first: it explains the rest)."""
    names = [k for k in dict.fromkeys([*expected, *recipe]) if recipe.get(k, "not recorded") != expected.get(k, "not recorded")]
    names.sort(key=lambda name: name != "GAN family")
    text = "; ".join(f"{k} {recipe.get(k, 'not recorded')}, not {expected.get(k, 'not recorded')}" for k in names[:3])
    return text + (f"; and {len(names) - 3} more" if len(names) > 3 else "")


def _pooled(results, gan_recipes, names):
    """The records of each table cell: ({(data source, N): {seed: (folder, record)}}, {folder: why some are left
    out, a difference of recipe before a seed counted twice}).

    A cell pools one experiment over seeds. Its recipe (`_recipe`) is that of the newest record at its data
    source and N of the first folder in `results` that has one (this folder's first); a seed's newest record of
    that recipe joins it from the first folder that has one. A record of another recipe, or of a seed already
    in the cell, is left out; one seen before (its run_id) is not counted again. Records without a seed (from
    before it was recorded) count once per folder.
    """
    cells, recipes, left_out, seen = {}, {}, {}, set()
    for folder, records in results.items():
        newest = {}
        for record in reversed(records):  # Newest first: a seed trained again replaces its figure.
            newest.setdefault((record["data_source"], record.get("real_per_digit") or 0, record.get("seed")), record)
        for (source, count, seed), record in newest.items():
            run_id = record.get("run_id")
            if run_id is not None and run_id in seen:
                continue  # The same record, in two folders' results.jsonl (a folder copied).
            seen.add(run_id)
            recipe, where = _recipe(record, gan_recipes.get(folder, {})), f"{dict(DATA_ROWS).get(source, source)}, {_column(count)}"
            expected, cell = recipes.setdefault((source, count), recipe), cells.setdefault((source, count), {})
            seed = ("not recorded", folder) if seed is None else seed
            if recipe != expected:
                left_out.setdefault(folder, []).append((0, f"{where}: {_difference(recipe, expected)}"))
            elif seed in cell:
                left_out.setdefault(folder, []).append((1, f"{where}: seed {seed} counted from {names[cell[seed][0]]}"))
            else:
                cell[seed] = (folder, record)
    return cells, {folder: min(reasons, key=lambda reason: reason[0])[1] for folder, reasons in left_out.items()}


def data_table(results, gan_minutes, names, gan_recipes=None):
    """The classifier's test accuracy by data source (rows) and real images per digit (columns), over seeds.

    A cell holds one experiment at every seed recorded (`_pooled`): its records share the classifier's
    settings and, in the generated rows, the GANs' (`gan_recipe`), and differ only in seed; `real_per_digit`
    N is 0 (all) for records from before it was recorded.

    Args:
      results: {folder: its results.jsonl records, oldest first}, this folder first.
      gan_minutes: {folder: GAN core-minutes of its generators, or None when unrecorded}.
      names: {folder: how the report names it}.
      gan_recipes: {folder: `gan_recipe(folder)`}; read from the folders when None.

    Returns:
      {"columns": [N, ...] ascending, all (0) last; "cells": {data source: {str(N): cell}}; "left_out": {folder's
      name: why its records, or some, are not in the table}}, a cell holding the mean test and validation accuracy
      in [0, 1], the test accuracy's standard deviation over the records (None for one), the seeds, images seen,
      mean GAN core-minutes of the folders a generated row drew from, and the folders and commands behind it.
    """
    gan_recipes = {folder: gan_recipe(folder) for folder in results} if gan_recipes is None else gan_recipes
    pooled, left_out = _pooled(results, gan_recipes, names)
    cells = {}
    for (source, count), by_seed in pooled.items():
        members = list(by_seed.values())
        cells.setdefault(source, {})[str(count)] = _data_cell_record(source, members, gan_minutes, names)
    return {
        "columns": sorted({count for _, count in pooled}, key=lambda n: (n == 0, n)),
        "cells": cells,
        "left_out": {names[folder]: reason for folder, reason in left_out.items()},
    }


def _data_cell_record(source, members, gan_minutes, names):
    """One cell of `data_table` from its [(folder, record)]."""
    tests = [r["test_accuracy"] for _, r in members]
    validations = [r["validation_accuracy"] for _, r in members if r.get("validation_accuracy") is not None]
    folders = list(dict.fromkeys(folder for folder, _ in members))
    minutes = [gan_minutes.get(folder) for folder in folders] if source in config_lib.GENERATED_SOURCES else [None]
    return {
        "test_accuracy": float(np.mean(tests)),
        "test_std": float(np.std(tests, ddof=1)) if len(tests) > 1 else None,
        "validation_accuracy": float(np.mean(validations)) if validations else None,
        "seeds": sorted(r.get("seed") for _, r in members if r.get("seed") is not None),
        "records": len(members),
        "impressions": sorted({r["impressions"] for _, r in members}),
        "gan_core_minutes": None if None in minutes else float(np.mean(minutes)),
        "folders": [names[folder] for folder in folders],
        "commands": list(dict.fromkeys(r["command"] for _, r in members if r.get("command"))),
    }


# ---- markdown ----


def _percent(value):
    return "–" if value is None else f"{value:.2%}"


def _classifier_section(report):
    lines = ["## Classifier: trained on generated vs real digits", ""]
    if not report["classifiers"]:
        return lines + ["No classifier trained yet: `./main.py --train-mnist --compare` trains both.", ""]
    lines += [
        "Accuracy of the same classifier on real MNIST images: validation (the 5,000 held-out training images) "
        "and test (the 10,000 test images, used only for these numbers).",
        "",
        "| training data | validation accuracy | test accuracy | lowest digit (test) | impressions | wall time | arithmetic |",
        "|---|---|---|---|---|---|---|",
    ]
    for source, r in report["classifiers"].items():
        worst = r["per_digit_accuracy"][r["min_digit"]]
        lines.append(
            f"| {source} | {_percent(r.get('validation_accuracy'))} | {r['test_accuracy']:.2%} | "
            f"{r['min_digit']} ({_percent(worst)}) | {r['impressions']:,} | {r['wall_time_s'] / 60:.1f} min | {_arithmetic(r)} |"
        )
    for source in report["missing_classifiers"]:
        lines += ["", f"Not trained yet on {source} data: `./main.py --train-mnist --data {source}`."]
    lines.append("")
    lines += _confusions_table(report)
    for source, r in report["classifiers"].items():
        if r.get("confusion_picture"):
            picture = f"![confusion, {source}]({r['confusion_picture']})"
            lines += [f"Confusion on the test images, trained on {source} data:", "", picture, ""]
    return lines


def _confusions_table(report):
    """The largest confusions on the test images, each classifier's count side by side."""
    rows = report.get("largest_confusions") or []
    if not rows:
        return []
    sources = list(rows[0]["counts"])
    lines = [
        "Largest confusions on the test images (how many of the true digit's test images each classifier read as "
        "the other; ordered by the classifier trained on generated digits): the digit pairs the generators still "
        "draw badly are those where it errs far more often than the one trained on real digits.",
        "",
        "| true digit | read as | " + " | ".join(f"trained on {source}" for source in sources) + " |",
        "|---|---|" + "---|" * len(sources),
    ]
    lines += [f"| {r['true']} | {r['read_as']} | " + " | ".join(str(r["counts"][s]) for s in sources) + " |" for r in rows]
    return lines + [""]


def _column(count):
    return f"N = {count:,}" if count else "all"


def _data_cell(cell, show_impressions):
    """One figure of the data table: "98.84% ± 0.11 (seeds 0, 1, 2; validation 98.92%; GAN 110.3 core-min)"."""
    if cell is None:
        return "not measured"
    spread = "" if cell["test_std"] is None else f" ± {cell['test_std'] * 100:.2f}"
    seeds = cell["seeds"]
    notes = [f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}" if seeds else f"{cell['records']} run(s)"]
    if len(seeds) != cell["records"]:
        notes[0] += f", {cell['records']} runs"
    if cell["validation_accuracy"] is not None:
        notes.append(f"validation {cell['validation_accuracy']:.2%}")
    if cell["gan_core_minutes"] is not None:
        notes.append(f"GAN {cell['gan_core_minutes']:.1f} core-min")
    if show_impressions:
        notes.append(" or ".join(f"{n:,}" for n in cell["impressions"]) + " images seen")
    return f"{cell['test_accuracy']:.2%}{spread} ({'; '.join(notes)})"


def _data_sentence(table):
    """What the table says, in one sentence: how adding generated digits to the real ones moved test accuracy."""
    cells = table["cells"]
    changes = [
        f"{(both['test_accuracy'] - real['test_accuracy']) * 100:+.2f} points {'at ' + _column(n) if n else 'with all real images'}"
        for n in table["columns"]
        for real, both in [(cells.get("real", {}).get(str(n)), cells.get("real+synthetic", {}).get(str(n)))]
        if real and both
    ]
    if not changes:
        return "Real only and real + generated are not both measured at any N yet: `./main.py --train-mnist --compare` trains all three."
    return f"Against real digits alone, adding generated ones moved test accuracy by {', '.join(changes)} (mean over seeds)."


def _data_section(report):
    table = report["data_table"]
    if not table["columns"]:
        return []  # The classifier section says how to train one.
    columns = table["columns"]
    show_impressions = len({n for cells in table["cells"].values() for c in cells.values() for n in c["impressions"]}) > 1
    lines = [
        "## Real, generated, and both",
        "",
        "Test accuracy of the same classifier trained on real digits only, on generated ones only, and on batches "
        "of both, with the first N real training images of each digit (`--real-per-digit N`; the GANs behind the "
        "generated rows learned from the same N): mean over seeds ± standard deviation in points, with the seeds "
        "and the validation accuracy; GAN core-minutes: what the generators drawn from cost. A cell pools one "
        "experiment: records of this and the `--compare-with` folders with the same classifier settings (and, "
        "generated, the same GAN settings) as the cell's first, each seed once.",
        "",
        "| data | " + " | ".join(_column(n) for n in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for source, name in DATA_ROWS:
        cells = table["cells"].get(source, {})
        lines.append(f"| {name} | " + " | ".join(_data_cell(cells.get(str(n)), show_impressions) for n in columns) + " |")
    if table.get("left_out"):
        listed = "; ".join(f"{folder} ({reason})" for folder, reason in table["left_out"].items())
        lines += ["", f"Left out, as not the same experiment at another seed: {listed}."]
    lines += ["", _data_sentence(table), "", "Trained by:", ""]
    for source, name in DATA_ROWS:
        for n in columns:
            cell = table["cells"].get(source, {}).get(str(n))
            if cell:
                commands = ", ".join(f"`{c}`" for c in cell["commands"]) or "commands not recorded"
                lines.append(f"- {name}, {_column(n)}: {commands} ({', '.join(cell['folders'])})")
    return lines + [""]


def _cell(row, metric, measured="generated"):
    return f"{row[measured][metric]:.3f} ({row['real_reference'][metric]:.3f})"


def _quality_section(report):
    lines = [
        "## Generator quality per digit",
        "",
        f"Each digit's kept generator (`digit-N/generator.keras`, or a conditional family's "
        f"`<family>/generator.keras` fed the digit; with several runs, run 1's): "
        f"{report['eval_samples']} generated images vs that digit's validation images (precision and "
        f"recall: the first {evaluation.KNN_SAMPLES}). In brackets, the reference: {report['eval_samples']} of the "
        f"digit's real training images, or all of them where it has fewer (column 'reference images'), vs the same "
        f"validation images: what a perfect generator would score with that many images. Arithmetic: the precision the "
        f"run trained in (`--precision`). Evaluator test accuracy: "
        f"{report['evaluator_test_accuracy']:.2%}, trained on {data.real_images_text(report.get('evaluator_real_per_digit', 0))}.",
        "",
        "| digit | steps | wall time | arithmetic | best step | Fréchet distance | class precision | confidence | precision "
        "| recall | reference images |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["digits"]:
        minutes = "" if row["wall_time_s"] is None else f"{row['wall_time_s'] / 60:.1f} min"
        flag = " (quality fell late)" if row["declined"] else ""
        cells = " | ".join(_cell(row, m) for m in METRICS)
        lines.append(
            f"| {row['digit']} | {row['steps']} | {minutes} | {row.get('arithmetic', '')} | {row['best_step'] or ''}{flag} | {cells} | "
            f"{row.get('reference_images', '')} |"
        )
    if report["untrained_digits"]:
        listed = ",".join(map(str, report["untrained_digits"]))
        lines += ["", f"Not trained yet: digit(s) {listed} (`./main.py --train-digits {listed}`)."]
    if report.get("training_digits"):
        listed = ",".join(map(str, report["training_digits"]))
        lines += ["", f"Still training: digit(s) {listed}; their rows measure the generators kept so far."]
    return lines + [""] + _stream_section(report)


def _stream_section(report):
    streamed = [row for row in report["digits"] if "stream" in row]
    if not streamed:
        return []
    lines = [
        "## What the classifier draws from",
        "",
        f"The synthetic classifier draws each digit from the generators in column 'generators' (with a snapshot "
        f"mixture, the kept snapshots of every run) in equal shares, with noise N(0, s²), s in column 'noise scale'. "
        f"Measured as above on "
        f"{report['eval_samples']} images of that mixture; the reference in brackets is the same.",
        "",
        "| digit | generators | noise scale | Fréchet distance | class precision | confidence | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in streamed:
        cells = " | ".join(_cell(row, m, "stream") for m in METRICS)
        lines.append(f"| {row['digit']} | {row['stream']['generators']} | {row['stream']['noise_scale']} | {cells} |")
    return lines + [""]


def _number(value, pattern):
    return "–" if value is None else format(value, pattern)


def _family_section(report):
    rows = [("this folder", report["summary"]), *report["compared"].items()]
    measured = {"stream": "what the classifier draws", "generated": "the kept generators"}
    lines = [
        "## Model family",
        "",
        "Quality columns: means over the digits of what the synthetic classifier draws (or, where that was not "
        "measured, of the kept generators), on validation; accuracy: the classifier trained on them alone. "
        "GAN core-minutes: each run's training time times the cores it used. Evaluator: the real images per digit "
        "the evaluator that measured the quality columns learned from (`--real-per-digit`).",
        "",
        "| folder | family | runs | GAN core-minutes | measured | evaluator | Fréchet distance | class precision | precision "
        "| recall | validation accuracy | test accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for folder, s in rows:
        cells = " | ".join(_number(s.get(m), ".3f") for m in SUMMARY_METRICS)
        lines.append(
            f"| {folder} | {s['family']} | {s['runs']} | {_number(s.get('gan_core_minutes'), '.1f')} | "
            f"{measured.get(s.get('measured'), '–')} | {_evaluator_images(s)} | {cells} | "
            f"{_percent(s.get('validation_accuracy'))} | {_percent(s.get('test_accuracy'))} |"
        )
    if len({s.get("evaluator_real_per_digit") for _, s in rows} - {None}) > 1:
        lines += ["", "The quality columns of rows whose evaluators learned from other real images do not compare."]
    commands = [(folder, s.get("command")) for folder, s in rows if s.get("command")]
    if commands:
        lines += ["", "Trained by:", "", *(f"- {folder}: `{command}`" for folder, command in commands)]
    if not report["compared"]:
        lines += ["", "`--compare-with FOLDER,...` adds the rows of other output folders (each with its own report)."]
    return lines + [""]


def _evaluator_images(summary):
    """The family table's evaluator cell: "all images", "100 per digit", or "–" in a report from before it was noted."""
    count = summary.get("evaluator_real_per_digit")
    return "–" if count is None else f"{count:,} per digit" if count else "all images"


def _digit_section(row, shown_before=None):
    """The digit's pictures; a conditional family's shared ones (grid, strip, curves) only where
    `shown_before` (the first digit that showed them) is None."""
    pictures, digit, unit = row["pictures"], row["digit"], row.get("unit")
    lines = [f"### Digit {digit}", ""]
    captions = (
        ("samples", "Final sample grid (64 fixed noise vectors)" if unit is None else f"Final sample grid of the {unit} network (a row per digit)"),
        ("evolution", "How it took shape: 4 fixed noise vectors (rows) over training (columns)"),
        ("latent_walk", "Latent walk: each row moves smoothly from one random noise vector to the next"),
        ("curves", "Training curves"),
    )
    if shown_before is not None:
        lines += [f"The {unit} network draws every digit: its sample grid, evolution and curves are under digit {shown_before}.", ""]
        captions = captions[2:3]
    for key, caption in captions:
        if pictures[key]:
            lines += [f"{caption}:", "", f"![digit {digit}, {key.replace('_', ' ')}]({pictures[key]})", ""]
        else:
            lines += [f"{caption}: not drawn yet.", ""]
    return lines


def markdown(report):
    lines = [
        "# mnistgan report",
        "",
        f"Written {report['created']} by `./main.py --evaluate`. Pictures are files beside this one.",
        "",
    ]
    lines += _classifier_section(report) + _data_section(report) + _family_section(report) + _quality_section(report)
    lines += ["## Training curves", ""]
    if report["quality_curves"]:
        lines += [f"![Fréchet distance of every digit during training]({report['quality_curves']})", ""]
    else:
        lines += ["No training metrics found.", ""]
    lines += ["## Each digit", ""]
    first_of_unit = {}
    for row in report["digits"]:
        unit = row.get("unit")
        lines += _digit_section(row, first_of_unit.get(unit))
        if unit is not None:
            first_of_unit.setdefault(unit, row["digit"])
    return "\n".join(lines).rstrip() + "\n"


def terminal_summary(text):
    """The report's tables and notes, without the pictures (for the terminal)."""
    tables = text.split("## Training curves")[0].split("\n")[4:]  # From the first section on.
    kept = [line for line in tables if not line.startswith("![") and not line.startswith("Confusion on")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


# ---- the action ----


def evaluate(config, mnist, evaluator=None):
    """Measures the digits in `config.digits` (default: every trained one); writes both reports.

    Returns:
      The process exit status (0).

    Raises:
      UserError: when no generator is trained, or one asked for is missing or unreadable.
    """
    digits = generators.measured_digits(config.output_dir, config.digits)
    # Every file it reads is checked before anything is trained or written.
    kept = generators.kept_samplers(config.output_dir, digits)
    streams = stream_samplers(config, digits)
    units = [generators.kept_unit(config.output_dir, d) for d in digits]
    records = [digit_record(config.output_dir, unit) for unit in units]
    latest_classifier_results(config.output_dir)  # Refuses a damaged results.jsonl now, not after the work.
    compared = compared_summaries(config.compare_with)
    compared_results = {folder: outputs.read_results(folder) for folder in config.compare_with}  # Refused now if damaged.
    gan_recipes = {folder: gan_recipe(folder) for folder in (config.output_dir, *config.compare_with)}  # So are their run.json.
    evaluator = evaluator or evaluation.load_or_train_evaluator(config.output_dir, mnist, seed=config.seed)
    evaluator_record = outputs.read_evaluator_record(config.output_dir) or {}
    rows = []
    for digit, unit, sampler, record in zip(digits, units, kept, records):
        rows.append(measure_digit(config, mnist, evaluator, digit, sampler, record, unit))
        if unit != digit:
            rows[-1]["unit"] = unit
        if streams:
            rows[-1]["stream"] = measure_stream(config, mnist, evaluator, digit, streams[digit])
        sampling.save_latent_walk(config.output_dir, digit, sampler, config.seed, unit)
    plots.save_training_curves(config.output_dir, list(dict.fromkeys(units)))
    report = build(config.output_dir, rows, evaluator_record, config.eval_samples, compared, compared_results, gan_recipes)
    outputs.write_json(outputs.report_path(config.output_dir, "json"), report)
    text = markdown(report)
    outputs.write_text(outputs.report_path(config.output_dir), text)
    print(terminal_summary(text))
    print(f"\nreport: {outputs.report_path(config.output_dir)} (and report.json)")
    return 0
