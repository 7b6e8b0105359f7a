"""The contract between training and its consumers: the manifest, samplers, and a conditional model through all of them."""

import dataclasses
import json
import os
import shutil
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnistgan import classifier, config as config_lib, gan, generators, networks, outputs, report, sampling
from mnistgan.errors import UserError
from tests.conftest import outcomes_before_tensorflow, run_main, tiny_config
from tests.test_classifier import digit_of, save_generators, tiny_mnist
from tests.test_evaluation import ScriptedEvaluator
from tests.test_sampling import read_idx

# ---- samplers ----


def test_a_sampler_draws_float_images_in_range_and_feeds_its_noise_scale():
    sampler = generators.Sampler(networks.build_generator(8))
    images = sampler.draw(6, seed=0)
    assert images.shape == (6, 28, 28, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, sampler.draw(6, seed=0))
    noise = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    wider = generators.Sampler(sampler.model, noise_scale=2.0)
    np.testing.assert_allclose(wider.images_for(noise), sampler.images_for(2 * noise), atol=1e-6)
    # The graph path (the classifier's stream) and the numpy path agree.
    np.testing.assert_allclose(wider(tf.constant(noise)).numpy(), wider.images_for(noise), atol=1e-5)


class ConstantModel:
    """A stand-in model: images of one grey level, enough to see which sampler drew an image."""

    def __init__(self, level):
        self.level = level
        self.inputs = [keras.Input((4,))]

    def predict(self, z, batch_size, verbose):
        return np.full((len(z), 28, 28, 1), self.level, np.float32)


def test_a_mixture_draws_equal_shares_shuffled():
    samplers = [generators.Sampler(ConstantModel(level)) for level in (0.0, 0.5, 1.0)]
    images = generators.draw_mixture(samplers, 30, seed=3)
    levels = images[:, 0, 0, 0]
    assert images.shape == (30, 28, 28, 1) and sorted(np.unique(levels, return_counts=True)[1]) == [10, 10, 10]
    assert len(set(levels[:10])) > 1  # The first images (precision and recall) come from every sampler.
    np.testing.assert_array_equal(images, generators.draw_mixture(samplers, 30, seed=3))


# ---- the manifest ----


def test_training_writes_the_manifest_and_a_later_digit_keeps_the_earlier_ones(tmp_path):
    config = tiny_config(tmp_path, eval_every=0, snapshots=2, runs_per_digit=2)
    mnist = tiny_mnist()
    assert gan.train_digits(config, mnist) == 0
    manifest = generators.read_manifest(config.output_dir)
    assert list(manifest) == [3]
    runs = {r: json.load(open(outputs.training_files(outputs.digit_dir(config.output_dir, 3, r)).record))["run_id"] for r in (1, 2)}
    assert manifest[3].generator == generators.Entry(os.path.join("digit-3", "generator.keras"), 1, runs[1])
    assert [(e.run, e.run_id, os.path.basename(e.path)) for e in manifest[3].snapshots] == [
        (1, runs[1], "step-000002.keras"), (1, runs[1], "step-000004.keras"),
        (2, runs[2], "step-000002.keras"), (2, runs[2], "step-000004.keras"),
    ]  # fmt: skip
    five = dataclasses.replace(config, digits=(5,), gan=dataclasses.replace(config.gan, runs_per_digit=1))
    assert gan.train_digits(five, mnist) == 0
    manifest = generators.read_manifest(config.output_dir)
    assert list(manifest) == [3, 5] and len(manifest[3].snapshots) == 4 and len(manifest[5].snapshots) == 2


def test_a_folder_from_before_the_manifest_is_read_from_its_files(tmp_path):
    output = str(tmp_path)
    save_generators(output)
    for run in (1, 2):
        path = outputs.snapshot_path(output, 4, 10, run)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(outputs.generator_path(output, 4), path)
    outputs.write_json(outputs.training_files(outputs.digit_dir(output, 4, 2)).record, {"run_id": "second", "status": "done"})
    unfinished = outputs.snapshot_path(output, 4, 10, 3)  # A run cut short is left out, not drawn half-trained.
    os.makedirs(os.path.dirname(unfinished))
    shutil.copyfile(outputs.generator_path(output, 4), unfinished)
    outputs.write_json(outputs.training_files(outputs.digit_dir(output, 4, 3)).record, {"run_id": "third", "status": "running"})
    assert not os.path.exists(outputs.manifest_path(output))
    with mock.patch.object(generators.logging, "warning") as warning:
        manifest = generators.load_manifest(output)
        generators.load_manifest(output)  # A command derives it several times; the reader is told once.
    assert warning.call_count == 1 and "digit 4: run 3 has not finished (running)" in warning.call_args.args[1]
    assert sorted(manifest) == list(range(10))
    assert [(e.run, e.run_id) for e in manifest[4].snapshots] == [(1, None), (2, "second")]
    assert len(generators.kept_samplers(output)) == 10
    # Training another digit writes a manifest that still lists the old ones.
    generators.record_training(output, [])
    assert sorted(generators.read_manifest(output)) == list(range(10))


def write_manifest_text(output, text):
    with open(outputs.manifest_path(output), "w", encoding="utf-8") as f:
        f.write(text)


def entry_manifest(path):
    return json.dumps({"version": 1, "digits": {"0": {"generator": {"path": path, "run": 1, "run_id": None}, "snapshots": []}}})


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"version": 1, "digits": {"0": {"generator": ', "generators.json is damaged"),
        ('{"version": 1, "digits": []}', "field 'digits' is missing or not a dict"),
        ('{"version": 1, "digits": {"x": {"snapshots": []}}}', "'x' is not a digit 0-9"),
        ('{"version": 1, "digits": {"0": {"generator": {"path": 3, "run": 1}, "snapshots": []}}}', "field 'path'"),
        ('{"version": 9, "digits": {}}', "version 9"),
        (entry_manifest("/etc/passwd"), "is not relative to the output folder"),
        (entry_manifest("../elsewhere/generator.keras"), "leaves the output folder"),
        (entry_manifest("digit-0/../../generator.keras"), "leaves the output folder"),
        (entry_manifest("digit-0/\u0000generator.keras"), "is not relative to the output folder"),
        (json.dumps({"version": 1, "digits": {"0": {"snapshots": [{"path": "digit-0/generator.keras", "run": 1, "label": 3}]}}}),
         "label 3 under digit 0"),
    ],
)
def test_a_damaged_or_escaping_manifest_is_refused_in_one_line(tmp_path, text, fragment):
    output = str(tmp_path)
    save_generators(output)
    write_manifest_text(output, text)
    with pytest.raises(UserError) as refusal:
        generators.kept_samplers(output)
    assert fragment in str(refusal.value) and "\n" not in str(refusal.value)


def test_a_manifest_path_through_a_link_out_of_the_folder_is_refused(tmp_path):
    output, elsewhere = tmp_path / "output", tmp_path / "elsewhere"
    save_generators(str(elsewhere))
    output.mkdir()
    os.symlink(elsewhere / "digit-0", output / "digit-0")
    write_manifest_text(str(output), entry_manifest("digit-0/generator.keras"))
    with pytest.raises(UserError, match="leaves the output folder"):
        generators.kept_samplers(str(output), digits=(0,))


def test_a_file_the_manifest_lists_but_is_gone_names_the_command(tmp_path):
    output = str(tmp_path)
    save_generators(output)
    generators.write_manifest(output, generators.derive_manifest(output))
    os.remove(outputs.generator_path(output, 7))
    with pytest.raises(UserError, match=r"digit-7/generator.keras is missing .*--train-digits 7 --restart"):
        generators.kept_samplers(output)


def test_consumers_refuse_a_damaged_manifest_from_the_command_line(tmp_path, real_mnist_dir):
    output = str(tmp_path)
    save_generators(output)
    write_manifest_text(output, "{not json")
    for action in (["--train-mnist"], ["--evaluate"], ["--export-mnist", str(tmp_path / "x")]):
        result = run_main(*action, "--output-dir", output, "--mnist-dir", real_mnist_dir)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and "generators.json is damaged" in lines[0], (action, result.stderr)
    assert os.listdir(tmp_path / "x") == []  # Only made by the writability check.
    assert not os.path.exists(outputs.classifier_dir(output, "synthetic"))


def with_snapshots(output):
    """Every digit's generator.keras also kept as a snapshot of run 1, listed in a written manifest."""
    for digit in range(10):
        path = outputs.snapshot_path(output, digit, 100)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copy(outputs.generator_path(output, digit), path)
    generators.write_manifest(output, generators.derive_manifest(output))


@pytest.mark.parametrize(
    "damage, flags, fragment",
    [
        # What each command draws from by default: every snapshot (--evaluate through the classifier's stream).
        ("truncate-snapshot", [], "digit-3/snapshots/step-000100.keras is damaged"),
        ("delete-snapshot", [], "digit-3/snapshots/step-000100.keras is missing"),
        ("truncate-generator", ["--snapshot-mixture=false"], "digit-7/generator.keras is damaged"),
    ],
)
def test_consumers_refuse_a_damaged_generator_before_importing_tensorflow(tmp_path, real_mnist_dir, damage, flags, fragment):
    """A refusal in well under a second, not after seconds of importing TensorFlow (commands.py)."""
    output = str(tmp_path / "out")
    save_generators(output)
    with_snapshots(output)
    if damage == "delete-snapshot":
        os.remove(outputs.snapshot_path(output, 3, 100))
    else:
        path = outputs.snapshot_path(output, 3, 100) if damage == "truncate-snapshot" else outputs.generator_path(output, 7)
        with open(path, "r+b") as f:
            f.truncate(100)
    export_source = ["--export-source", "generator"] if damage == "truncate-generator" else []
    actions = [["--train-mnist"], ["--evaluate"], ["--export-mnist", str(tmp_path / "x"), *export_source]]
    refusals, imported = outcomes_before_tensorflow(*[[*a, *flags, "--output-dir", output, "--mnist-dir", real_mnist_dir] for a in actions])
    assert not imported
    for refusal in refusals:
        assert fragment in refusal and "--restart" in refusal, refusal


def test_a_run_started_again_since_the_manifest_was_written_is_refused(tmp_path):
    output = str(tmp_path)
    save_generators(output)
    record = outputs.training_files(outputs.digit_dir(output, 6)).record
    outputs.write_json(record, {"run_id": "before"})
    generators.write_manifest(output, generators.derive_manifest(output))
    outputs.write_json(record, {"run_id": "after"})  # What a --restart that was cut short leaves.
    with pytest.raises(UserError, match=r"digit-6/generator.keras belongs to run before .*run id after.*--train-digits 6"):
        generators.kept_samplers(output)


def test_a_classifier_on_other_real_images_than_its_generators_is_refused_before_tensorflow(tmp_path, real_mnist_dir):
    output, scarce = str(tmp_path / "all"), str(tmp_path / "n100")
    for folder, count in ((output, None), (scarce, 100)):
        save_generators(folder)
        for digit in range(10):  # A record from before real_per_digit existed counts as all images.
            config = {} if count is None else {"real_per_digit": count}
            outputs.write_json(outputs.training_files(outputs.digit_dir(folder, digit)).record, {"config": config})
    flags = ["--train-mnist", "--snapshot-mixture=false", "--mnist-dir", real_mnist_dir, "--output-dir"]
    refusals, imported = outcomes_before_tensorflow([*flags, output, "--real-per-digit", "100"], [*flags, scarce, "--data", "real+synthetic"])
    assert refusals[0].startswith(f"the generators in {output} learned from all 55,000 training images and this classifier would learn from the first 100")
    assert refusals[1].endswith("give --real-per-digit 100, or train generators with --real-per-digit 0 into another --output-dir")
    assert not imported


def test_a_restart_takes_its_digits_out_of_the_manifest_before_training(tmp_path):
    output = str(tmp_path)
    save_generators(output)
    config = config_lib.Config(action="train-digits", digits=(2, 7), output_dir=output, restart=True)
    generators.prepare_training(config)
    assert sorted(generators.read_manifest(output)) == [0, 1, 3, 4, 5, 6, 8, 9]
    with pytest.raises(UserError, match=r"no generator for digit\(s\) 2,7 "):
        generators.kept_samplers(output)


# ---- the export draws what the classifier draws ----


def test_the_export_and_the_classifiers_stream_draw_from_the_same_samplers(tmp_path):
    """The default preset's stream (every run's snapshots at noise 1.2), found through the manifest alone."""
    output = str(tmp_path / "output")
    save_generators(output)
    for digit in range(10):
        for run, step in ((1, 10), (2, 10), (2, 20)):
            path = outputs.snapshot_path(output, digit, step, run)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(outputs.generator_path(output, digit), path)
        outputs.write_json(outputs.training_files(outputs.digit_dir(output, digit, 2)).record, {"status": "done"})
    preset = config_lib.PRESETS["default"][1]
    config = config_lib.Config(
        action="train-mnist", output_dir=output, seed=1,
        classifier=dataclasses.replace(preset, steps=2, batch_size=10, eval_every=2, checkpoint_every=2),
        export=config_lib.ExportConfig(folder=str(tmp_path / "export"), per_digit=3),
    )  # fmt: skip
    trained = classifier.DataSourceClassifier(config, "synthetic", tiny_mnist()).train().record
    assert sampling.export_mnist(config) == 0
    exported = json.load(open(tmp_path / "export" / sampling.RECORD_NAME))
    assert exported["source"] == "classifier"
    assert [exported["generators"][str(d)] for d in range(10)] == trained["stream"]
    assert {s["noise_scale"] for digit in trained["stream"] for s in digit} == {1.2}
    assert [len(digit) for digit in trained["stream"]] == [3] * 10
    assert exported["generator_run_ids"] == trained["generator_run_ids"]
    # The old draw, kept as an option: each digit's generator.keras at noise N(0, 1).
    old = dataclasses.replace(config, export=dataclasses.replace(config.export, source="generator", folder=str(tmp_path / "old")))
    assert sampling.export_mnist(old) == 0
    kept = json.load(open(tmp_path / "old" / sampling.RECORD_NAME))["generators"]
    assert kept["4"] == [{"path": os.path.join("digit-4", "generator.keras"), "run": 1, "run_id": None, "noise_scale": 1.0}]


# ---- a conditional (two-input) generator through every consumer ----


def conditional_generator(latent_dim=4):
    """One model for all digits: noise (n, latent) and int32 labels (n,) -> every pixel at (label + 1) / 11.

    Plain Keras layers only, so it loads in safe mode; the noise is used, so the model has two real inputs.
    """
    noise = keras.Input((latent_dim,), name="noise")
    label = keras.Input((), dtype="int32", name="label")
    levels = np.array([[(d + 1) / 11] for d in range(10)], np.float32)
    level = keras.layers.Embedding(10, 1, embeddings_initializer=keras.initializers.Constant(levels), trainable=False)(label)
    ignored = keras.layers.Dense(1, kernel_initializer="zeros", use_bias=False)(noise)  # Always 0.
    pixels = keras.layers.Dense(28 * 28, kernel_initializer="ones", bias_initializer="zeros")(keras.layers.Add()([level, ignored]))
    return keras.Model([noise, label], keras.layers.Reshape(networks.IMAGE_SHAPE)(pixels))


@pytest.fixture(scope="module")
def conditional_output(tmp_path_factory):
    """An output folder whose manifest lists one conditional generator for all ten digits, each with its label."""
    output = str(tmp_path_factory.mktemp("conditional") / "output")
    path = os.path.join(output, "cdcgan", "generator.keras")  # Where --family cdcgan saves its network.
    os.makedirs(os.path.dirname(path))
    conditional_generator().save(path)
    entry = generators.Entry(os.path.relpath(path, output), 1, "cond")
    manifest = {d: generators.DigitGenerators(dataclasses.replace(entry, label=d), (dataclasses.replace(entry, label=d),)) for d in range(10)}
    generators.write_manifest(output, manifest)
    return output


def test_a_conditional_generator_feeds_its_label_through_the_stream(conditional_output):
    samplers = generators.classifier_samplers(conditional_output, config_lib.PRESETS["default"][1])
    stream = classifier.SyntheticStream(samplers, batch_size=20, seed=0, batches_per_draw=2)
    for _ in range(3):
        images, labels = (t.numpy() for t in stream())
        np.testing.assert_array_equal(digit_of(images), labels)
    assert sorted(set(labels.tolist())) == list(range(10))


def test_a_conditional_generator_goes_through_the_export_and_the_report(conditional_output, tmp_path):
    output = str(tmp_path / "output")
    shutil.copytree(conditional_output, output)
    config = config_lib.Config(
        action="export-mnist", output_dir=output, eval_samples=20, classifier=config_lib.PRESETS["default"][1],
        export=config_lib.ExportConfig(folder=str(tmp_path / "export"), per_digit=4),
    )  # fmt: skip
    assert sampling.export_mnist(config) == 0
    images = read_idx(str(tmp_path / "export" / "train-images-idx3-ubyte"))
    labels = read_idx(str(tmp_path / "export" / "train-labels-idx1-ubyte"))
    np.testing.assert_array_equal(digit_of(images.astype(np.float32)[..., None] / 255), labels)
    # The toy split has enough validation images of digit 5 for the k-NN metrics.
    measured = dataclasses.replace(config, action="evaluate", digits=(5,))
    assert report.evaluate(measured, tiny_mnist(60), ScriptedEvaluator([0.0] * 6)) == 0
    written = json.load(open(outputs.report_path(output, "json")))
    assert [row["digit"] for row in written["digits"]] == [5] and written["untrained_digits"] == []
    assert written["digits"][0]["stream"]["noise_scale"] == 1.2  # The default stream: snapshots at noise 1.2.
    # Its latent walk goes beside the conditional network (the unit that draws every digit), not into a digit-5/ folder.
    assert written["digits"][0]["pictures"]["latent_walk"] == "cdcgan/latent-walk-5.png"
    assert os.path.exists(outputs.latent_walk_path(output, 5, "cdcgan")) and not os.path.exists(os.path.join(output, "digit-5"))


def test_a_conditional_entry_on_an_unconditional_model_is_refused(tmp_path):
    output = str(tmp_path)
    save_generators(output)
    manifest = generators.derive_manifest(output)
    manifest[2] = generators.DigitGenerators(dataclasses.replace(manifest[2].generator, label=2))
    generators.write_manifest(output, manifest)
    with pytest.raises(UserError, match=r"digit-2/generator.keras is not a conditional digit generator"):
        generators.kept_samplers(output)


def test_a_damaged_conditional_generator_names_its_family_not_a_digit(conditional_output, tmp_path):
    output = str(tmp_path / "output")
    shutil.copytree(conditional_output, output)
    with open(os.path.join(output, "cdcgan", "generator.keras"), "r+b") as damaged:
        damaged.truncate(100)
    with pytest.raises(UserError) as refusal:
        generators.kept_samplers(output, digits=(3,))
    assert "./main.py --train-digits 0,1,2,3,4,5,6,7,8,9 --family cdcgan --restart" in str(refusal.value)
    os.remove(os.path.join(output, "cdcgan", "generator.keras"))
    with pytest.raises(UserError, match=r"cdcgan/generator.keras is missing .*--family cdcgan --restart"):
        generators.kept_samplers(output, digits=(3,))
    # Its run.json too, as --evaluate reads it.
    outputs.write_text(os.path.join(output, "cdcgan", "run.json"), "{not json")
    with pytest.raises(UserError, match=r"cdcgan/run.json .*--family cdcgan --restart"):
        report.digit_record(output, "cdcgan")
