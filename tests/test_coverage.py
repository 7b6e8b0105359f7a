import dataclasses
import json
import os
import threading

import numpy as np
import pytest

from mnistgan import coverage, gan, gan_state, gan_step, outputs
from mnistgan.errors import UserError
from tests.conftest import Killed, assert_same_generators, blob_images, die_after_checkpoint, tiny_config


class BrightnessEvaluator:
    """Features: an image's mean brightness, so that "covered" means "as bright as some generated image"."""

    def features_and_probabilities(self, images):
        brightness = np.asarray(images, np.float64).reshape(len(images), -1).mean(axis=1, keepdims=True)
        return brightness, np.full((len(images), 10), 0.1)


def save_constant_generator(path, value):
    """A plain Keras generator that draws the same image, every pixel `value`, for any noise."""
    import keras

    z = keras.Input((32,))
    x = keras.layers.Dense(784, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value))(z)
    images = keras.layers.Reshape((28, 28, 1))(x)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    keras.Model(z, images).save(path)


def finished_run(output_dir, digit, run, run_id, value):
    folder = outputs.digit_dir(output_dir, digit, run)
    save_constant_generator(outputs.generator_path(output_dir, digit, run), value)
    outputs.write_json(os.path.join(folder, "run.json"), {"run_id": run_id, "status": "done"})


def test_nearest_distances_and_weights():
    reference = np.array([[0.0, 0.0], [10.0, 0.0]])
    queries = np.array([[1.0, 0.0], [7.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(coverage.nearest_distances(reference, queries, chunk=2), [1.0, 5.0, 0.0])
    np.testing.assert_allclose(coverage.weights_from_distances([1.0, 3.0, 0.0], 1), [0.25, 0.75, 0.0])
    np.testing.assert_allclose(coverage.weights_from_distances([1.0, 3.0], 2), [0.1, 0.9])
    np.testing.assert_allclose(coverage.weights_from_distances([0.0, 0.0], 2), [0.5, 0.5])


def test_a_coverage_targeted_run_draws_what_the_earlier_run_misses(tmp_path):
    output_dir = str(tmp_path / "output")
    finished_run(output_dir, 3, 1, "run-one", 0.0)  # Run 1 draws only black images.
    train = np.zeros((40, 28, 28, 1), np.float32)
    train[20:] = 1.0  # Half the training images are black (covered), half white (missed).
    folder = outputs.digit_dir(output_dir, 3, 2)
    os.makedirs(folder)
    lines = []
    weights, summary = coverage.run_weights(output_dir, folder, 3, 2, 2.0, BrightnessEvaluator(), train, 0, lines.append)
    np.testing.assert_allclose(weights[:20], 0.0)
    np.testing.assert_allclose(weights[20:], 1 / 20)
    assert summary["earlier_run_ids"] == ["run-one"] and summary["max_weight_vs_uniform"] == 2.0
    assert "what run 1 covers worst" in lines[-1]
    # The step draws by those weights: white images only.
    config = tiny_config(tmp_path, coverage_focus=2.0).gan
    step = gan_step.GanStep(gan_state.GanState(config, train, seed=0, draw_weights=weights))
    assert np.all(step._real_indices().numpy() >= 20)
    step.state.reset(train, seed=0)  # Without weights (run 1 of the next digit): uniform again.
    assert np.any(np.concatenate([step._real_indices().numpy() for _ in range(4)]) < 20)
    # Saved: a second call reads the same weights back instead of measuring again.
    again, _ = coverage.run_weights(output_dir, folder, 3, 2, 2.0, None, train, 0, lines.append)
    np.testing.assert_array_equal(again, weights)


def test_run_two_records_its_weights_resumes_with_them_and_refuses_a_damaged_file(tmp_path):
    config = tiny_config(tmp_path, runs_per_digit=2, coverage_focus=1.0, eval_every=0, snapshots=1)
    jobs = [(3, run, blob_images(64), blob_images(16, seed=1), None) for run in (1, 2)]
    results = list(gan.train_jobs(config, jobs, BrightnessEvaluator()))
    assert [r.status for r in results] == ["done", "done"]
    folder = outputs.digit_dir(config.output_dir, 3, 2)
    with open(os.path.join(folder, "run.json")) as f:
        record = json.load(f)
    assert record["coverage"]["earlier_run_ids"] == [results[0].run_id] and record["coverage"]["focus"] == 1.0
    path = os.path.join(folder, "coverage.npz")
    saved = np.load(path)["weights"]
    assert saved.shape == (64,) and saved.sum() == pytest.approx(1.0)
    # A resumed run draws with the saved weights, even if run 1 changed since.
    training = gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1), BrightnessEvaluator(), run=2)
    np.testing.assert_array_equal(training._draw_weights({}), saved)
    with open(path, "wb") as f:
        f.write(b"not an npz")
    longer = dataclasses.replace(config, gan=dataclasses.replace(config.gan, steps=8))  # Unfinished: it would resume.
    with pytest.raises(UserError, match="coverage.npz"):
        gan.DigitTraining(longer, 3, run=2).check()


def test_a_run_waits_for_the_earlier_runs_another_worker_trains(tmp_path):
    output_dir = str(tmp_path / "output")
    record = os.path.join(outputs.digit_dir(output_dir, 3, 1), "run.json")
    os.makedirs(os.path.dirname(record))
    outputs.write_json(record, {"run_id": "one", "status": "running"})
    lines = []
    finisher = threading.Timer(0.3, outputs.write_json, (record, {"run_id": "one", "status": "done"}))
    finisher.start()
    coverage.wait_for_earlier_runs(output_dir, 3, 2, lines.append, poll=0.05)
    finisher.join()
    assert lines == ["waiting for run(s) 1 to finish: this run draws toward what they miss"]
    with open(record) as f:
        assert json.load(f)["status"] == "done"


def test_refreshes_are_kept_by_step_and_a_resumed_run_draws_with_the_last_one_it_passed(tmp_path):
    path = str(tmp_path / "coverage-refresh.npz")
    assert coverage.refreshed_weights(path, 10, 4) is None
    even, skewed = [0.25] * 4, [0.1, 0.2, 0.3, 0.4]
    coverage.save_refresh(path, 2, even)
    coverage.save_refresh(path, 4, skewed)
    assert coverage.refreshed_weights(path, 1, 4) is None  # Before the first refresh: the run's own first weights.
    np.testing.assert_array_equal(coverage.refreshed_weights(path, 3, 4), even)
    np.testing.assert_array_equal(coverage.refreshed_weights(path, 9, 4), skewed)
    coverage.save_refresh(path, 2, skewed)  # A run cut short after refresh 4, before its checkpoint, redoes from 2.
    steps, weights = coverage.read_refreshes(path, 4)
    assert steps.tolist() == [2] and weights.tolist() == [skewed]
    with pytest.raises(UserError, match="coverage-refresh.npz.*5 training images"):
        coverage.read_refreshes(path, 5)
    with open(path, "wb") as f:
        f.write(b"not an npz")
    with pytest.raises(UserError, match="coverage-refresh.npz"):
        coverage.refreshed_weights(path, 3, 4)


def refreshing_config(folder):
    return tiny_config(folder, steps=6, coverage_focus=2.0, coverage_refresh=2, eval_every=0, snapshots=0)


def train_refreshing(config):
    return gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1), BrightnessEvaluator()).train()


def test_a_refreshing_run_steers_itself_and_resumes_to_the_straight_runs_weights(tmp_path, monkeypatch):
    straight, killed = refreshing_config(tmp_path / "straight"), refreshing_config(tmp_path / "killed")
    assert train_refreshing(straight).status == "done"
    steps, weights = coverage.read_refreshes(os.path.join(outputs.digit_dir(straight.output_dir, 3), "coverage-refresh.npz"), 64)
    assert steps.tolist() == [2, 4]  # Not at the last step: nothing trains after it.
    assert np.all(weights.max(axis=1) > 1.3 / 64) and np.all(weights.min(axis=1) < 0.7 / 64)  # Steered, not uniform.
    die_after_checkpoint(monkeypatch, 4)
    with pytest.raises(Killed):
        train_refreshing(killed)
    monkeypatch.undo()
    assert train_refreshing(killed).steps == 6
    assert_same_generators(straight.output_dir, killed.output_dir)
    # The focus shapes run 1 now: a changed one is refused like any other setting.
    other = dataclasses.replace(killed, gan=dataclasses.replace(killed.gan, coverage_focus=1.0, steps=8))
    with pytest.raises(UserError, match="coverage_focus"):
        gan.DigitTraining(other, 3).check()
