"""The report: every section a person needs, pictures linked by relative paths, gaps named."""

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from mnistgan import config as config_lib, gan, images, outputs, plots, precision, report
from mnistgan.errors import UserError
from tests.conftest import blob_images, tiny_config
from tests.test_classifier import tiny_mnist
from tests.test_evaluation import ScriptedEvaluator


@pytest.fixture(scope="module")
def trained_digit(tmp_path_factory):
    """An output folder with one tiny GAN run (digit 5, quality measured at steps 2 and 4)."""
    config = tiny_config(tmp_path_factory.mktemp("run"), eval_every=2, eval_samples=20)
    gan.DigitTraining(config, 5, blob_images(64), blob_images(16, seed=1), evaluator=ScriptedEvaluator([2.0, 1.0])).train()
    return config.output_dir


def classifier_record(source, validation, test):
    return {
        "data_source": source, "validation_accuracy": validation, "test_accuracy": test,
        "per_digit_accuracy": [test] * 10, "min_digit": 6, "impressions": 5000, "wall_time_s": 90.0,
        "confusion": (np.eye(10, dtype=int) * 100).tolist(), "config": {"precision": "mixed_bfloat16"},
    }  # fmt: skip


def add_classifier(output, source, validation, test):
    outputs.append_jsonl(outputs.results_path(output), classifier_record(source, validation, test))
    picture = images.confusion_heatmap(np.eye(10, dtype=int) * 100, f"trained on {source} data")
    images.save_png(outputs.confusion_path(output, source), picture)


def write_report(source, tmp_path):
    """Copies the output folder `source` into `tmp_path` and writes its report there; returns (folder, report.md)."""
    output = str(tmp_path / "output")
    shutil.copytree(source, output)
    config = config_lib.Config(action="evaluate", output_dir=output, eval_samples=20)
    assert report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0])) == 0
    with open(outputs.report_path(output), encoding="utf-8") as f:
        return output, f.read()


def linked_pictures(text):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def test_report_holds_every_section_with_its_pictures(trained_digit, tmp_path, capsys):
    output = str(tmp_path / "output")
    shutil.copytree(trained_digit, output)
    add_classifier(output, "synthetic", 0.95, 0.94)
    add_classifier(output, "real", 0.991, 0.992)
    output, text = write_report(output, tmp_path / "again")
    # The comparison, with validation and test accuracy and wall time.
    assert "| synthetic | 95.00% | 94.00% | 6 (94.00%) | 5,000 | 1.5 min | bfloat16 |" in text
    assert "| real | 99.10% | 99.20% |" in text
    # The quality table: the arithmetic the run trained in, the generated number and the real-data reference in brackets.
    row = next(line for line in text.splitlines() if line.startswith("| 5 | 4 |"))
    trained_in = json.load(open(os.path.join(output, "digit-5", "run.json")))["config"]["precision"]
    assert re.search(r"^\| 5 \| 4 \| [\d.]+ min \| (float32|bfloat16) \|", row) and precision.shown(trained_in) in row
    assert re.search(r"\| \d+\.\d{3} \(\d+\.\d{3}\) \|", row)
    assert "Not trained yet: digit(s) 0,1,2,3,4,6,7,8,9 (`./main.py --train-digits 0,1,2,3,4,6,7,8,9`)" in text
    # Every picture is linked relative to output/ and exists there.
    pictures = linked_pictures(text)
    for expected in (
        "classifier-synthetic/confusion.png", "classifier-real/confusion.png", "quality-curves.png",
        "digit-5/samples/step-000004.png", "digit-5/evolution.png", "digit-5/latent-walk.png", "digit-5/curves.png",
    ):  # fmt: skip
        assert expected in pictures
    for picture in pictures:
        assert not os.path.isabs(picture) and Image.open(os.path.join(output, picture)).size[0] > 100
    result = json.load(open(outputs.report_path(output, "json")))
    assert result["untrained_digits"] == [0, 1, 2, 3, 4, 6, 7, 8, 9] and result["missing_classifiers"] == ["real+synthetic"]
    assert result["digits"][0]["pictures"]["latent_walk"] == "digit-5/latent-walk.png"
    printed = capsys.readouterr().out
    assert "| real | 99.10% | 99.20% |" in printed and "![" not in printed
    assert printed.rstrip().endswith(f"report: {outputs.report_path(output)} (and report.json)")


def test_the_report_measures_the_mixture_the_classifier_draws_from(trained_digit, tmp_path):
    output = str(tmp_path / "output")
    shutil.copytree(trained_digit, output)
    config = config_lib.Config(
        action="evaluate",
        output_dir=output,
        eval_samples=20,
        classifier=config_lib.ClassifierConfig(snapshot_mixture=True, noise_scale=1.2),
    )
    assert report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0])) == 0
    assert "## What the classifier draws from" not in open(outputs.report_path(output), encoding="utf-8").read()
    for run, step in ((1, 2), (1, 4), (2, 4)):
        path = outputs.snapshot_path(output, 5, step, run)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(outputs.generator_path(output, 5), path)
    outputs.write_json(outputs.training_files(outputs.digit_dir(output, 5, 2)).record, {"status": "done"})
    # The generator, the real reference, then the mixture.
    assert report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0, 1.0])) == 0
    text = open(outputs.report_path(output), encoding="utf-8").read()
    assert "## What the classifier draws from" in text and "noise N(0, s²), s in column 'noise scale'" in text
    assert re.search(r"^\| 5 \| 3 \| 1\.2 \| \d+\.\d{3} \(\d+\.\d{3}\) \|", text, re.MULTILINE)
    stream = json.load(open(outputs.report_path(output, "json")))["digits"][0]["stream"]
    assert stream["generators"] == 3 and stream["noise_scale"] == 1.2 and 0 <= stream["recall"] <= 1


def test_missing_classifiers_are_named_not_fatal(trained_digit, tmp_path):
    _, text = write_report(trained_digit, tmp_path)
    assert "No classifier trained yet: `./main.py --train-mnist --compare`" in text
    output = str(tmp_path / "partial")
    shutil.copytree(trained_digit, output)
    add_classifier(output, "real", 0.99, 0.99)
    _, text = write_report(output, tmp_path / "partial-report")
    assert "Not trained yet on synthetic data: `./main.py --train-mnist --data synthetic`." in text
    assert "| real | 99.00% | 99.00% |" in text


def test_older_classifier_records_without_validation_accuracy(trained_digit, tmp_path):
    output = str(tmp_path / "output")
    shutil.copytree(trained_digit, output)
    record = classifier_record("real", None, 0.99)
    del record["validation_accuracy"]
    outputs.append_jsonl(outputs.results_path(output), record)
    _, text = write_report(output, tmp_path / "report")
    assert "| real | – | 99.00% |" in text


def test_the_family_row_and_other_folders_beside_it(trained_digit, tmp_path):
    output = str(tmp_path / "output")
    shutil.copytree(trained_digit, output)
    add_classifier(output, "synthetic", 0.95, 0.94)
    output, text = write_report(output, tmp_path / "first")
    result = json.load(open(outputs.report_path(output, "json")))
    summary, row = result["summary"], result["digits"][0]
    record = json.load(open(outputs.training_files(outputs.digit_dir(output, 5)).record))
    assert summary["family"] == "dcgan" and summary["runs"] == 1 and summary["digits"] == 1
    assert record["cores"] >= 1 and summary["gan_core_minutes"] == pytest.approx(record["wall_time_s"] * record["cores"] / 60)
    assert summary["measured"] == "generated" and summary["recall"] == row["generated"]["recall"]
    assert summary["validation_accuracy"] == 0.95 and summary["test_accuracy"] == 0.94
    assert summary["evaluator_real_per_digit"] == 0  # Measured by an evaluator of all the images.
    assert re.search(r"^\| this folder \| dcgan \| 1 \| \d+\.\d \| the kept generators \| all images \| (\d+\.\d{3} \| ){4}95\.00% \| 94\.00% \|$", text, re.M)
    assert "do not compare" not in text
    # Another folder's row, read from its report.json: measured by an evaluator of 100 images per digit.
    other = str(tmp_path / "other")
    os.makedirs(other)
    other_summary = dict(summary, family="mlp", runs=10, test_accuracy=0.9, evaluator_real_per_digit=100)
    outputs.write_json(outputs.report_path(other, "json"), {"summary": other_summary})
    # And the command that trained each folder, from its run records.
    outputs.write_json(outputs.training_files(outputs.digit_dir(output, 5)).record, dict(record, command="./main.py --train-digits 5"))
    config = config_lib.Config(action="evaluate", output_dir=output, eval_samples=20, compare_with=(other,))
    assert report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0])) == 0
    text = open(outputs.report_path(output), encoding="utf-8").read()
    assert re.search(rf"^\| {re.escape(other)} \| mlp \| 10 \| [^|]+ \| [^|]+ \| 100 per digit \| .* \| 90\.00% \|$", text, re.M)
    assert "The quality columns of rows whose evaluators learned from other real images do not compare." in text
    assert re.search(r"^\| this folder \| dcgan \| 1 \|", text, re.M)
    assert "- this folder: `./main.py --train-digits 5`" in text


def test_the_table_of_real_generated_and_both_gathers_seeds_and_folders(trained_digit, tmp_path):
    output, scarce = str(tmp_path / "output"), str(tmp_path / "n100")
    shutil.copytree(trained_digit, output)
    for folder, count, figures in (
        (output, 0, {"real": [0.9936, 0.9930], "synthetic": [0.9884, 0.9890], "real+synthetic": [0.9940, 0.9944]}),
        (scarce, 100, {"real": [0.95], "synthetic": [0.96], "real+synthetic": [0.97]}),
    ):
        for source, tests in figures.items():
            for seed, test in enumerate(tests):
                command = f"./main.py --train-mnist --data {source} --seed {seed}"
                record = dict(classifier_record(source, test + 0.001, test), seed=seed, real_per_digit=count, command=command)
                outputs.append_jsonl(outputs.results_path(folder), record)
    outputs.append_jsonl(outputs.results_path(output), dict(classifier_record("real", 0.5, 0.5), seed=9))  # Before N was recorded: all.
    outputs.append_jsonl(outputs.results_path(output), dict(classifier_record("real", 0.9946, 0.9936), seed=9))  # Trained again: replaces it.
    outputs.write_json(outputs.report_path(scarce, "json"), {"summary": {
        "family": "dcgan", "runs": 10, "digits": 10, "gan_core_minutes": 31.25, "command": "./main.py --train-digits 0,1 --real-per-digit 100",
        **dict.fromkeys((*report.SUMMARY_METRICS, "validation_accuracy", "test_accuracy"))}})  # fmt: skip
    config = config_lib.Config(action="evaluate", output_dir=output, eval_samples=20, compare_with=(scarce,))
    assert report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0])) == 0
    text = open(outputs.report_path(output), encoding="utf-8").read()
    table = text.split("## Real, generated, and both")[1].split("\n## ")[0]
    assert "| data | N = 100 | all |" in table
    assert "| real only | 95.00% (seed 0; validation 95.10%) | 99.34% ± 0.03 (seeds 0, 1, 9; validation 99.44%) |" in table
    assert re.search(r"^\| generated only \| 96\.00% \(seed 0; validation 96\.10%; GAN 31\.2 core-min\) \| 98\.87% ± 0\.04 \(seeds 0, 1; validation 98\.97%; GAN \d+\.\d core-min\) \|$", table, re.M)
    assert "| real + generated | 97.00% (seed 0; validation 97.10%; GAN 31.2 core-min) | 99.42% ± 0.03 (seeds 0, 1;" in table
    assert "adding generated ones moved test accuracy by +2.00 points at N = 100, +0.08 points with all real images" in table
    assert f"- real + generated, N = 100: `./main.py --train-mnist --data real+synthetic --seed 0` ({scarce})" in table
    assert "Evaluator test accuracy: " in text and "trained on all 55,000 training images." in text


def compared_report(folder, minutes=31.25):
    """A report.json with a family summary, as `--compare-with` needs of each folder."""
    outputs.write_json(outputs.report_path(folder, "json"), {"summary": {
        "family": "dcgan", "runs": 1, "digits": 1, "gan_core_minutes": minutes, "command": None,
        **dict.fromkeys((*report.SUMMARY_METRICS, "validation_accuracy", "test_accuracy"))}})  # fmt: skip


def test_the_table_pools_one_experiment_over_seeds_and_leaves_other_recipes_out(trained_digit, tmp_path):
    """`--compare-with` another family's folder (as the README suggests) and another seed's folder, at the same N."""
    output, mlp, seed1 = (str(tmp_path / name) for name in ("output", "mlp", "seed1"))
    for folder, family, seed in ((output, "dcgan", 0), (mlp, "mlp", 0), (seed1, "dcgan", 1)):
        shutil.copytree(trained_digit, folder)
        path = outputs.training_files(outputs.digit_dir(folder, 5)).record
        run = json.load(open(path))
        # Another seed trained in another arithmetic is still the same experiment.
        arithmetic = "float32" if seed else run["config"]["precision"]
        outputs.write_json(path, dict(run, seed=seed, config=dict(run["config"], family=family, precision=arithmetic)))
        if folder != output:
            compared_report(folder)

    def add(folder, source, test, seed, run_id, steps=20000):
        config = {"steps": steps, "precision": "mixed_bfloat16"}
        record = dict(classifier_record(source, test, test), seed=seed, run_id=run_id, config=config)
        outputs.append_jsonl(outputs.results_path(folder), record)

    add(output, "real", 0.9936, 0, "real-0")
    add(output, "synthetic", 0.9884, 0, "dcgan-0")
    add(mlp, "real", 0.9930, 0, "mlp-real-0")  # Seed 0 of real only again: counted once, this folder's.
    add(mlp, "synthetic", 0.9373, 0, "mlp-0")  # Another family's generators: not this experiment.
    add(seed1, "synthetic", 0.9890, 1, "dcgan-1")  # The same experiment at seed 1.
    add(seed1, "synthetic", 0.9884, 0, "dcgan-0")  # This folder's record, copied: not counted twice.
    add(seed1, "real", 0.9900, 1, "real-1-short", steps=10000)  # Another classifier recipe.
    config = config_lib.Config(action="evaluate", output_dir=output, eval_samples=20, compare_with=(mlp, seed1))
    assert report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0])) == 0
    text = open(outputs.report_path(output), encoding="utf-8").read()
    table = text.split("## Real, generated, and both")[1].split("\n## ")[0]
    assert "| data | all |" in table and "| real only | 99.36% (seed 0; validation 99.36%) |" in table
    assert re.search(r"^\| generated only \| 98\.87% ± 0\.04 \(seeds 0, 1; validation 98\.87%; GAN \d+\.\d core-min\) \|$", table, re.M)
    assert (
        f"Left out, as not the same experiment at another seed: {mlp} (generated only, all: GAN family mlp, not dcgan); "
        f"{seed1} (real only, all: classifier steps 10000, not 20000)."
    ) in table
    cells = json.load(open(outputs.report_path(output, "json")))["data_table"]["cells"]
    assert cells["synthetic"]["0"]["folders"] == ["this folder", seed1] and cells["real"]["0"]["records"] == 1


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("real_per_digit", "100", "field 'real_per_digit' is not a int"),
        ("real_per_digit", -1, "field 'real_per_digit' is negative"),
        ("confusion", [[0] * 10] * 9, "field 'confusion' is not 10x10 image counts"),
        ("confusion", [[0] * 9] * 10, "field 'confusion' is not 10x10 image counts"),
        ("seed", "0", "field 'seed' is not a int"),
        ("per_digit_accuracy", [0.9] * 9, "per_digit_accuracy or min_digit is not of the ten digits"),
        ("min_digit", 10, "per_digit_accuracy or min_digit is not of the ten digits"),
        ("command", ["./main.py"], "field 'command' is not a str"),
    ],
)
def test_a_hand_edited_classifier_record_is_one_line_naming_it(trained_digit, tmp_path, field, value, reason):
    """Here or in a `--compare-with` folder, before any measuring."""
    output, other = str(tmp_path / "output"), str(tmp_path / "other")
    shutil.copytree(trained_digit, output)
    compared_report(other)
    outputs.append_jsonl(outputs.results_path(output), classifier_record("real", 0.99, 0.99))
    outputs.append_jsonl(outputs.results_path(other), dict(classifier_record("real", 0.99, 0.99), **{field: value}))
    config = config_lib.Config(action="evaluate", output_dir=output, eval_samples=20, compare_with=(other,))
    where = f"{outputs.results_path(other)} line 1"
    remedy = "remove line 1 (or the file, which only lists finished classifier runs)"
    with pytest.raises(UserError, match=rf"^{re.escape(where)} is damaged \({reason}\); {re.escape(remedy)}$"):
        report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0]))
    os.replace(outputs.results_path(other), outputs.results_path(output))
    with pytest.raises(UserError, match=rf"^{re.escape(outputs.results_path(output))} line 1 is damaged \({reason}\)"):
        report.evaluate(dataclasses.replace(config, compare_with=()), tiny_mnist(60), ScriptedEvaluator([3.0, 0.0]))


@pytest.mark.parametrize(
    "content, message",
    [(None, "does not exist; write it with ./main.py --evaluate"), ("{", "is damaged"), ('{"summary": {"family": 3}}', "family")],
)
def test_a_folder_to_compare_without_a_sound_report_is_refused(trained_digit, tmp_path, content, message):
    other = tmp_path / "other"
    other.mkdir()
    if content is not None:
        (other / "report.json").write_text(content)
    config = config_lib.Config(action="evaluate", output_dir=str(trained_digit), eval_samples=20, compare_with=(str(other),))
    with pytest.raises(UserError, match=message):
        report.evaluate(config, tiny_mnist(60), ScriptedEvaluator([3.0, 0.0]))


# ---- the curves ----


def test_curves_plot_losses_and_the_measured_quality(tmp_path, trained_digit):
    metrics = plots.read_metrics(outputs.digit_metrics_path(trained_digit, 5))
    assert metrics["step"].tolist() == [2.0, 4.0] and not np.isnan(metrics["frechet_distance"]).any()
    figure = plots.digit_curves(metrics, 3)
    losses, quality = figure.axes
    assert [line.get_label() for line in losses.lines] == ["d_loss", "g_loss"]
    np.testing.assert_array_equal(quality.lines[0].get_ydata(), metrics["frechet_distance"])
    assert quality.get_yscale() == "log"
    unmeasured = dict(metrics, frechet_distance=np.full(2, np.nan))
    assert not plots.digit_curves(unmeasured, 3).axes[1].lines  # Said in words instead.
    path = str(tmp_path / "curves.png")
    plots.save_figure(path, figure)
    assert Image.open(path).size == (900, 300)


def test_damaged_metrics_are_refused(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,d_loss\n2,oops\n")
    with pytest.raises(UserError, match="metrics.csv is damaged"):
        plots.read_metrics(str(path))
    assert plots.read_metrics(str(tmp_path / "absent.csv")) is None


def test_the_largest_confusions_stand_beside_the_real_data_classifiers(trained_digit, tmp_path):
    output = str(tmp_path / "output")
    shutil.copytree(trained_digit, output)
    for source, mistakes in (("synthetic", {(6, 5): 21, (9, 4): 20, (7, 2): 18}), ("real", {(6, 5): 3, (4, 9): 5})):
        record = classifier_record(source, 0.99, 0.99)
        confusion = np.eye(10, dtype=int) * 100
        for (true, read_as), images_ in mistakes.items():
            confusion[true, read_as] = images_
        record["confusion"] = confusion.tolist()
        outputs.append_jsonl(outputs.results_path(output), record)
    output, text = write_report(output, tmp_path / "again")
    rows = [line for line in text.splitlines() if re.match(r"^\| \d \| \d \| \d+ \| \d+ \|$", line)]
    # The generated-only classifier's mistakes first, largest first, each beside the real-data one's count.
    assert rows == ["| 6 | 5 | 21 | 3 |", "| 9 | 4 | 20 | 0 |", "| 7 | 2 | 18 | 0 |", "| 4 | 9 | 0 | 5 |"]
    assert "| true digit | read as | trained on synthetic | trained on real |" in text
    assert report.largest_confusions({}) == []
