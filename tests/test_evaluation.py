import dataclasses
import json
import os

import keras
import numpy as np
import pytest

from mnistgan import config as config_lib, data, evaluation, gan, gan_monitor, gan_state, generators, outputs, report
from tests.conftest import blob_images, run_main, tiny_config
from tests.test_classifier import save_generators, tiny_mnist

# ---- metrics on features with known answers ----


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # |mean_a - mean_b|^2 = 5, plus sum of (sqrt(var_a) - sqrt(var_b))^2 = 1 + 1 + 4.
    assert evaluation.frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(11.0)


def test_frechet_distance_is_rotation_invariant_and_zero_for_equal_gaussians():
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    cov_a, cov_b = np.diag([1.0, 2.0, 3.0, 4.0]), np.diag([4.0, 3.0, 2.0, 1.0])
    direct = evaluation.frechet_distance(np.zeros(4), cov_a, np.zeros(4), cov_b)
    rotated = evaluation.frechet_distance(np.zeros(4), rotation @ cov_a @ rotation.T, np.zeros(4), rotation @ cov_b @ rotation.T)
    assert rotated == pytest.approx(direct, rel=1e-6)
    assert evaluation.frechet_distance(np.ones(4), cov_a, np.ones(4), cov_a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_from_samples_approaches_the_true_value():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, (20000, 2))
    b = rng.normal([3.0, 0.0], 2.0, (20000, 2))
    assert evaluation.frechet_distance_of(a, b) == pytest.approx(9.0 + 2 * (1 + 4 - 4), rel=0.05)


def test_real_vs_disjoint_real_scores_near_perfect_and_failures_do_not():
    rng = np.random.default_rng(2)
    real_a, real_b = rng.standard_normal((500, 8)), rng.standard_normal((500, 8))
    precision, recall = evaluation.precision_recall(real_a, real_b)
    assert precision > 0.8 and recall > 0.8  # k-NN manifolds from 500 points miss some of the tails.
    assert evaluation.frechet_distance_of(real_a, real_b) < 0.3
    noise = rng.uniform(4, 6, (500, 8))  # Far from the real manifold.
    assert evaluation.precision_recall(real_a, noise)[0] < 0.05
    assert evaluation.frechet_distance_of(real_a, noise) > 100
    collapsed = np.repeat(real_a[:1], 500, axis=0)  # One image, repeated: looks right, covers nothing.
    precision, recall = evaluation.precision_recall(real_a, collapsed)
    assert precision == 1.0 and recall < 0.05


# ---- the evaluator itself, on a toy task ----


@pytest.fixture(scope="module")
def toy_evaluator(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("evaluator"))
    toy = dataclasses.replace(evaluation.EVALUATOR_CONFIG, steps=150, batch_size=20, eval_every=50, checkpoint_every=150)
    evaluator = evaluation.load_or_train_evaluator(folder, tiny_mnist(60), config=toy, min_accuracy=0.9)
    return folder, evaluator


def test_evaluator_is_trained_once_then_loaded_from_its_cache(toy_evaluator):
    folder, evaluator = toy_evaluator
    record = json.load(open(os.path.join(outputs.evaluator_dir(folder), "evaluator.json")))
    assert record["validation_accuracy"] >= 0.9 and record["test_accuracy"] >= 0.8
    assert evaluator.model.get_layer("features").units == evaluation.FEATURE_SIZE
    again = evaluation.load_or_train_evaluator(folder, mnist=None)  # No data needed: cached.
    for a, b in zip(again.model.get_weights(), evaluator.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_evaluator_below_the_accuracy_bar_is_refused(tmp_path):
    from mnistgan.errors import UserError

    toy = dataclasses.replace(evaluation.EVALUATOR_CONFIG, steps=1, batch_size=10, eval_every=1, checkpoint_every=1)
    with pytest.raises(UserError, match="evaluator reached only"):
        evaluation.load_or_train_evaluator(str(tmp_path), tiny_mnist(), config=toy)


def test_an_evaluator_that_steers_scarce_runs_learns_from_their_images_and_a_mismatch_is_refused(tmp_path):
    from mnistgan import jobs
    from mnistgan.errors import UserError

    toy = dataclasses.replace(evaluation.EVALUATOR_CONFIG, steps=2, batch_size=10, eval_every=2, checkpoint_every=2)
    evaluation.load_or_train_evaluator(str(tmp_path), data.first_per_digit(tiny_mnist(60), 30), config=toy, min_accuracy=0.0)
    record = outputs.read_evaluator_record(str(tmp_path))
    # Its config is the one it trained with, not EVALUATOR_CONFIG's real_per_digit 0 beside a top-level 30.
    assert record["real_per_digit"] == 30 and record["config"]["real_per_digit"] == 30
    assert record["config"]["feature_size"] == evaluation.FEATURE_SIZE and record["config"]["steps"] == 2
    run = json.load(open(outputs.training_files(outputs.evaluator_dir(str(tmp_path))).record))
    assert run["config"]["real_per_digit"] == 30  # A half-trained one resumes only on the same images.
    scarce = dataclasses.replace(tiny_config(tmp_path), output_dir=str(tmp_path))
    jobs.check_evaluator(dataclasses.replace(scarce, gan=dataclasses.replace(scarce.gan, real_per_digit=30, eval_every=2)))
    with pytest.raises(UserError, match=r"learned from the first 30 training images of each digit, and the runs it would steer from all 55,000"):
        jobs.check_settings(dataclasses.replace(scarce, gan=dataclasses.replace(scarce.gan, eval_every=2)))


def test_measure_on_toy_digits(toy_evaluator):
    _, evaluator = toy_evaluator
    mnist = tiny_mnist(60)
    images, labels = mnist.split("train")
    real = data.to_float(images[labels == 4])
    same = evaluation.measure(evaluator, real[: len(real) // 2], real[len(real) // 2 :], digit=4)
    noise = evaluation.measure(evaluator, real, np.random.default_rng(0).uniform(0, 1, real.shape).astype(np.float32), 4)
    assert same.class_precision > 0.9 and same.frechet_distance < noise.frechet_distance
    assert noise.precision < same.precision


# ---- best-checkpoint selection and decline flag in GAN training ----


class ScriptedEvaluator:
    """Features of generated images are shifted by the next value of `shifts`: larger is worse."""

    def __init__(self, shifts):
        self.shifts = list(shifts)
        self.calls = 0

    def features_and_probabilities(self, images):
        n = len(images)
        features = np.random.default_rng(self.calls).standard_normal((n, 4))
        if self.calls % 2:  # measure() asks for real features first, then generated ones.
            features += self.shifts[self.calls // 2]
        self.calls += 1
        return features, np.full((n, 10), 0.1)


def train_scripted(tmp_path, shifts, **gan_settings):
    config = tiny_config(tmp_path, eval_every=2, eval_samples=20, **gan_settings)
    run = gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1), evaluator=ScriptedEvaluator(shifts))
    return config, run.train()


def generator_weights_at(config, step):
    import tensorflow as tf

    digit_gan = gan_state.GanState(config.gan, np.zeros((1, 28, 28, 1), np.float32), seed=0)
    folder = os.path.join(outputs.digit_dir(config.output_dir, 3), "checkpoints")
    digit_gan.checkpoint.restore(os.path.join(folder, f"ckpt-{step}")).expect_partial()
    assert tf.train.latest_checkpoint(folder)
    # The run samples (and saves) with the calibration noise of digit 3 at that step.
    return gan_monitor.calibrated_generator(digit_gan, seed=gan_monitor.noise_seed(config.seed * 10 + 3, step, "calibration")).get_weights()


def test_selection_keeps_the_better_earlier_generator(tmp_path):
    config, result = train_scripted(tmp_path, shifts=[0.0, 5.0], steps=4)
    assert result.best_step == 2 and result.steps == 4
    saved = keras.models.load_model(outputs.generator_path(config.output_dir, 3)).get_weights()
    for a, b in zip(saved, generator_weights_at(config, 2)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AssertionError):  # The final state differs from what was kept.
        for a, b in zip(saved, generator_weights_at(config, 4)):
            np.testing.assert_array_equal(a, b)
    record = json.load(open(os.path.join(outputs.digit_dir(config.output_dir, 3), "run.json")))
    assert record["best_step"] == 2 and record["steps_done"] == 4
    header, *rows = open(os.path.join(outputs.digit_dir(config.output_dir, 3), "metrics.csv")).read().splitlines()
    assert "frechet_distance" in header and len(rows) == 2


def test_selection_keeps_a_later_better_generator(tmp_path):
    _, result = train_scripted(tmp_path, shifts=[5.0, 0.0], steps=4)
    assert result.best_step == 4 and not result.declined


def test_a_decline_is_flagged_and_can_stop_the_run(tmp_path, capsys):
    _, result = train_scripted(tmp_path / "a", shifts=[0, 1, 2, 3, 4], steps=10, decline_patience=3)
    assert result.declined and result.best_step == 2 and result.steps == 10
    settings = dict(shifts=[0, 1, 2, 3, 4], steps=10, decline_patience=3)
    config, stopped = train_scripted(tmp_path / "b", stop_on_decline=True, **settings)
    assert stopped.declined and stopped.stopped_on_decline and stopped.steps == 8
    generator = os.stat(outputs.generator_path(config.output_dir, 3))
    # The same command again: it stays stopped, and says so.
    _, again = train_scripted(tmp_path / "b", stop_on_decline=True, **settings)
    assert again.steps == 8 and again.stopped_on_decline
    assert os.stat(outputs.generator_path(config.output_dir, 3)).st_mtime_ns == generator.st_mtime_ns
    gan.print_summary([again])
    assert "stopped there by --stop-on-decline" in capsys.readouterr().out
    # Without --stop-on-decline it trains on.
    _, resumed = train_scripted(tmp_path / "b", shifts=[9], steps=10, decline_patience=3)
    assert resumed.steps == 10 and not resumed.stopped_on_decline


def test_checks_score_other_noise_than_the_calibration_drew(tmp_path, monkeypatch):
    drawn = {}

    def spy(purpose, function, seed_index):
        def wrapper(*args, **kwargs):
            seed = kwargs["seed"] if "seed" in kwargs else args[seed_index]
            drawn.setdefault(purpose, []).append(np.random.default_rng(seed).standard_normal(4).tolist())
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(gan_monitor, "calibrated_generator", spy("calibration", gan_monitor.calibrated_generator, 1))
    monkeypatch.setattr(gan_monitor, "heldout_accuracy", spy("heldout", gan_monitor.heldout_accuracy, 4))
    monkeypatch.setattr(generators.Sampler, "draw", spy("quality", generators.Sampler.draw, 2))
    train_scripted(tmp_path, shifts=[0.0], steps=2)
    step_2 = [drawn["calibration"][-1], drawn["heldout"][-1], drawn["quality"][-1]]
    assert len({tuple(noise) for noise in step_2}) == 3


# ---- the report ----


def test_evaluate_writes_both_reports(toy_evaluator, tmp_path):
    _, evaluator = toy_evaluator
    output = str(tmp_path)
    save_generators(output)
    outputs.append_jsonl(
        outputs.results_path(output),
        {"data_source": "real", "validation_accuracy": 0.985, "test_accuracy": 0.99, "per_digit_accuracy": [0.99] * 10,
         "min_digit": 0, "impressions": 1000, "wall_time_s": 60.0},
    )  # fmt: skip
    # More than the ~55 training images each toy digit has.
    config = config_lib.Config(action="evaluate", digits=(1, 4), output_dir=output, eval_samples=80)
    assert report.evaluate(config, tiny_mnist(60), evaluator) == 0
    result = json.load(open(os.path.join(output, "report.json")))
    assert [row["digit"] for row in result["digits"]] == [1, 4]
    for row in result["digits"]:
        assert set(row["generated"]) == set(report.METRICS) == set(row["real_reference"])
    # The reference: 80 real training images of the digit, or all of them when it has fewer.
    available = [len(data.digit_images(tiny_mnist(60), "train", digit)) for digit in (1, 4)]
    assert max(available) < 80 and [row["reference_images"] for row in result["digits"]] == available
    text = open(os.path.join(output, "report.md")).read()
    assert "| 1 |" in text and "| 4 |" in text and "| real | 98.50% | 99.00% |" in text


def test_evaluate_from_the_command_line(toy_evaluator, tmp_path, real_mnist_dir):
    import shutil

    folder, _ = toy_evaluator
    output = str(tmp_path / "out")
    shutil.copytree(folder, output)
    assert run_main("--evaluate", "--output-dir", output, "--mnist-dir", real_mnist_dir).returncode == 2
    save_generators(output)
    result = run_main("--evaluate", "--digits", "0,7", "--eval-samples", "50", "--output-dir", output, "--mnist-dir", real_mnist_dir)
    assert result.returncode == 0, result.stderr
    assert os.path.exists(os.path.join(output, "report.md")) and "| 7 |" in result.stdout
