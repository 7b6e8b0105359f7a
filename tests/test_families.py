"""The model families: their networks against the seeds', the label reaching G and D, and conditional training."""

import dataclasses
import json
import os

import numpy as np
import pytest

from mnistgan import config as config_lib, gan, gan_step, generators, networks, outputs, report
from mnistgan.jobs import jobs_of
from tests.conftest import Killed, blob_images, die_after_checkpoint, run_main, tiny_config
from tests.test_classifier import tiny_mnist
from tests.test_evaluation import ScriptedEvaluator


def test_cgan_mlp_has_cgan_mnists_networks():
    generator = networks.build_cgan_generator(latent_dim=100)
    # Dense 100->256, 256->512, 512->1024 (each with batch norm), 1024->784; the label embedding 10 x 100.
    assert generator.count_params() == (25_856 + 1_024) + (131_584 + 2_048) + (525_312 + 4_096) + 803_600 + 1_000 == 1_494_520
    discriminator = networks.build_cgan_discriminator()
    # The label embedding 10 x 784; Dense 784->512, 512->512, 512->512, 512->1.
    assert discriminator.count_params() == 7_840 + 401_920 + 262_656 + 262_656 + 513 == 935_585


def test_the_conditional_dcgan_is_the_dcgans_networks_given_the_label():
    assert networks.build_conditional_generator().count_params() == 3_312_801 + 10 * 10 + 10 * 1024
    assert networks.build_projection_discriminator().count_params() == 3_268_769 + 10 * 1024


@pytest.mark.parametrize(
    "generator, discriminator",
    [(networks.build_cgan_generator, networks.build_cgan_discriminator), (networks.build_conditional_generator, networks.build_projection_discriminator)],
    ids=["cgan-mlp", "cdcgan"],
)
def test_the_label_reaches_g_and_d(generator, discriminator):
    g, d = generator(), discriminator()
    z = np.random.default_rng(0).standard_normal((4, g.inputs[0].shape[1])).astype(np.float32)
    images = {label: g([z, np.full(4, label, np.int32)], training=False).numpy() for label in (2, 7)}
    assert images[2].shape == (4, 28, 28, 1) and images[2].min() >= 0 and images[2].max() <= 1
    assert np.abs(images[2] - images[7]).max() > 1e-4  # G draws another image for another label.
    d.get_layer(index=-1)  # Built.
    for layer in d.layers:  # Random embeddings, so the label changes D's answer from the start.
        if isinstance(layer, __import__("keras").layers.Embedding):
            layer.embeddings.assign(np.random.default_rng(1).normal(size=layer.embeddings.shape))
    logits = {label: d([images[2], np.full(4, label, np.int32)], training=False).numpy() for label in (2, 7)}
    assert np.abs(logits[2] - logits[7]).max() > 1e-4


def conditional_config(tmp_path, family, **settings):
    config = tiny_config(tmp_path, family=family, latent_dim=16, eval_every=0, snapshots=1, **settings)
    return dataclasses.replace(config, digits=(3, 5))


def conditional_jobs(config):
    per_digit = [(3, blob_images(40), blob_images(10, seed=1)), (5, blob_images(40, seed=2), blob_images(10, seed=3))]
    return jobs_of(config, per_digit)


@pytest.mark.parametrize("family", ["cgan-mlp", "cdcgan"])
def test_a_conditional_family_trains_one_network_and_lists_it_for_every_digit(tmp_path, family, monkeypatch):
    config = conditional_config(tmp_path, family)
    seen = []
    discriminate = gan_step.discriminate

    def recording(discriminator, images, dropout=True, packing=1, labels=None):
        seen.append(None if labels is None else np.unique(np.asarray(labels)).tolist())
        return discriminate(discriminator, images, dropout, packing, labels)

    monkeypatch.setattr(gan_step, "discriminate", recording)
    training = gan.unit_training(config, family, *conditional_jobs(config)[0][2:])
    step = gan_step.GanStep(training.new_state())
    step.train_step()  # Eager: the patched function is the one called.
    assert seen and all(labels and set(labels) <= {3, 5} for labels in seen)  # D is told the labels, only trained digits.
    monkeypatch.undo()
    results = list(gan.train_jobs(config, conditional_jobs(config)))
    assert [(r.digit, r.status, r.labels) for r in results] == [(family, "done", (3, 5))]
    generators.record_training(config.output_dir, results)
    manifest = generators.load_manifest(config.output_dir)
    assert sorted(manifest) == [3, 5]
    assert manifest[5].generator == generators.Entry(f"{family}/generator.keras", 1, results[0].run_id, 5)
    assert [s.label for s in manifest[3].snapshots] == [3]
    samplers = generators.kept_samplers(config.output_dir, (3, 5))
    assert [s.draw(2, seed=0).shape for s in samplers] == [(2, 28, 28, 1)] * 2
    folder = os.path.join(config.output_dir, family)
    assert os.path.exists(os.path.join(folder, "samples", "step-000004.png")) and os.path.exists(os.path.join(folder, "evolution.png"))
    # The report reads the family's run and shows its shared pictures once, a latent walk per digit.
    assert report.evaluate(dataclasses.replace(config, action="evaluate", digits=()), tiny_mnist(60), ScriptedEvaluator([3.0, 0.0] * 2)) == 0
    written = json.load(open(outputs.report_path(config.output_dir, "json")))
    assert [(r["digit"], r["unit"], r["steps"]) for r in written["digits"]] == [(3, family, 4), (5, family, 4)]
    assert written["digits"][1]["pictures"] == {
        "samples": f"{family}/samples/step-000004.png", "evolution": f"{family}/evolution.png",
        "latent_walk": f"{family}/latent-walk-5.png", "curves": f"{family}/curves.png",
    }  # fmt: skip
    assert (written["summary"]["family"], written["summary"]["runs"]) == (family, 1)
    assert not any(name.startswith("digit-") for name in os.listdir(config.output_dir))
    text = open(outputs.report_path(config.output_dir), encoding="utf-8").read()
    assert text.count(f"![digit 3, samples]({family}/samples/step-000004.png)") == 1 and "![digit 5, samples]" not in text
    other_digits = dataclasses.replace(config, digits=(3,), gan=dataclasses.replace(config.gan, steps=8))
    with pytest.raises(config_lib.UserError, match="trains digits 3,5"):
        gan.unit_training(other_digits, family).check()


def test_a_conditional_run_killed_at_a_checkpoint_resumes_to_the_straight_runs_weights(tmp_path, monkeypatch):
    import keras

    straight, killed = (conditional_config(tmp_path / name, "cdcgan", steps=8) for name in ("straight", "killed"))
    list(gan.train_jobs(straight, conditional_jobs(straight)))
    die_after_checkpoint(monkeypatch, 4)
    with pytest.raises(Killed):
        list(gan.train_jobs(killed, conditional_jobs(killed)))
    monkeypatch.undo()
    assert [r.steps for r in gan.train_jobs(killed, conditional_jobs(killed))] == [8]
    with open(os.path.join(killed.output_dir, "cdcgan", "metrics.csv")) as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["2", "4", "6", "8"]
    a = keras.models.load_model(outputs.generator_path(straight.output_dir, "cdcgan")).get_weights()
    b = keras.models.load_model(outputs.generator_path(killed.output_dir, "cdcgan")).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def test_a_conditional_family_from_the_command_line_then_the_classifier(tmp_path, real_mnist_dir):
    output = str(tmp_path / "output")
    common = ("--mnist-dir", real_mnist_dir, "--output-dir", output)
    # One snapshot: the classifier's stream then loads ten samplers instead of twenty.
    result = run_main(
        "--train-digits", "0,1,2,3,4,5,6,7,8,9", "--family", "cgan-mlp", "--runs-per-digit", "1", "--steps", "4",
        "--sample-every", "2", "--checkpoint-every", "2", "--eval-every", "0", "--snapshots", "1", *common,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cgan-mlp | done" in result.stdout
    with open(os.path.join(output, "generators.json")) as f:
        listed = json.load(f)["digits"]
    assert {d: e["generator"]["label"] for d, e in listed.items()} == {str(d): d for d in range(10)}
    result = run_main("--train-mnist", "--classifier-steps", "2", "--classifier-batch-size", "10", *common)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(output, "classifier-synthetic", "run.json")) as f:
        stream = json.load(f)["stream"]
    assert {s["label"] for digit in stream for s in digit} == set(range(10))


def test_conditional_settings_that_cannot_apply_are_refused():
    cdcgan = config_lib.family_config(config_lib.PRESETS["default"][0], "default", "cdcgan")
    assert (cdcgan.steps, cdcgan.minibatch_std_group, cdcgan.d_learning_rate, cdcgan.coverage_focus, cdcgan.packing) == (
        40_000, 4, 5e-5, 0.0, 1)
    # The default preset's coverage focus and packing are not carried over to a network of all digits (they would be refused).
    config_lib.check_family(cdcgan)
    config_lib.check_family(config_lib.family_config(config_lib.PRESETS["default"][0], "default", "cgan-mlp"))
    # Its four snapshots span the last 15,000 of 40,000 steps, as a digit's span the last 1,500 of 4,000.
    assert (cdcgan.checkpoint_every, cdcgan.eval_every, cdcgan.sample_every) == (5000, 5000, 2500)
    cgan = config_lib.family_config(config_lib.PRESETS["original"][0], "original", "cgan-mlp")
    assert (cgan.steps, cgan.batch_size, cgan.latent_dim, cgan.mixed_batches) == (20_000, 32, 100, False)
    with pytest.raises(config_lib.UserError, match="--packing"):
        config_lib.check_family(dataclasses.replace(cdcgan, packing=2))
    with pytest.raises(config_lib.UserError, match="--coverage-focus"):
        config_lib.check_family(dataclasses.replace(cdcgan, coverage_focus=1.0))
    with pytest.raises(config_lib.UserError, match="--negative-weight"):
        config_lib.check_family(dataclasses.replace(cdcgan, negative_weight=0.1))
