import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnistgan import data, gan, gan_monitor, gan_state, gan_step, outputs
from tests.conftest import ROOT, Killed, assert_same_generators, blob_images, die_after_checkpoint, run_main, tiny_config


def negative_images(count=64, seed=2):
    """uint8 (count, 28, 28): bright squares of random size and place, like `blob_images`' discs: another digit's images."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 28, 28), np.uint8)
    for i in range(count):
        top, left = rng.integers(4, 12, 2)
        side = rng.integers(8, 14)
        images[i, top : top + side, left : left + side] = 255
    return images


def train(config, train_images=None):
    negatives = negative_images() if config.gan.negative_weight > 0 else None
    train_images = blob_images(64) if train_images is None else train_images
    return gan.DigitTraining(config, 3, train_images, blob_images(16, seed=1), negatives=negatives).train()


def with_steps(config, steps, **changes):
    return dataclasses.replace(config, gan=dataclasses.replace(config.gan, steps=steps), **changes)


def read_record(config):
    with open(os.path.join(outputs.digit_dir(config.output_dir, 3), "run.json")) as f:
        return json.load(f)


def csv_steps(config):
    with open(os.path.join(outputs.digit_dir(config.output_dir, 3), "metrics.csv")) as f:
        return [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]


# Finished runs that several tests start from, each trained once: (config, the DigitResult its
# training returned). A test that changes one works on a copy (`copy_of`); the others only read it.
@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp("two-steps"), steps=2)
    return config, train(config)


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp("four-steps"))
    return config, train(config)


@pytest.fixture(scope="module")
def eight_steps_two_snapshots(tmp_path_factory):
    config = tiny_config(tmp_path_factory.mktemp("snapshots"), steps=8, snapshots=2, eval_every=0)
    return config, train(config)


def copy_of(trained, tmp_path):
    """The trained run's config, its output folder a copy in `tmp_path`, as if this test had trained it there."""
    config, _ = trained
    copy = dataclasses.replace(config, output_dir=str(tmp_path / "output"))
    shutil.copytree(config.output_dir, copy.output_dir)
    return copy


def test_short_run_writes_every_file(tmp_path, four_steps):
    config, result = four_steps
    assert result.status == "done" and result.steps == 4
    folder = outputs.digit_dir(config.output_dir, 3)
    for name in ("generator.keras", "evolution.png", "evolution.npz", "metrics.csv", "run.json"):
        assert os.path.getsize(os.path.join(folder, name)) > 0, name
    for step in (0, 2, 4):
        assert os.path.exists(outputs.sample_path(config.output_dir, 3, step))
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(os.path.join(folder, "logs")))
    record = read_record(config)
    assert record["steps_done"] == 4 and record["status"] == "done" and record["seed"] == 0
    assert record["config"]["latent_dim"] == 32 and "keras" in record["versions"]
    assert record["steps_per_second"] > 0 and record["wall_time_s"] > 0
    assert csv_steps(config) == [2, 4]
    assert not [n for n in os.listdir(folder) if ".tmp" in n]  # No temporary files left behind.


def test_generator_loads_in_a_process_that_never_imports_the_project(tmp_path, two_steps):
    config, _ = two_steps
    script = (
        "import sys, numpy as np, keras\n"
        "assert not any(m.startswith('mnistgan') for m in sys.modules)\n"
        "g = keras.models.load_model(sys.argv[1])\n"
        "x = g(np.random.default_rng(0).standard_normal((6, 32)).astype('float32'), training=False)\n"
        "x = keras.ops.convert_to_numpy(x)\n"
        "print(x.shape, x.dtype, float(x.min()) >= 0.0, float(x.max()) <= 1.0)\n"
    )
    path = outputs.generator_path(config.output_dir, 3)
    # -I: isolated mode, so neither the working folder nor PYTHONPATH puts the project on the path.
    result = subprocess.run([sys.executable, "-I", "-c", script, path], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(6, 28, 28, 1) float32 True True"


def test_resume_continues_the_step_counter_and_matches_a_straight_run(tmp_path, four_steps):
    straight = tiny_config(tmp_path / "straight", steps=8)
    train(straight)
    resumed = copy_of(four_steps, tmp_path / "resumed")  # Trained to step 4.
    sample_4 = outputs.sample_path(resumed.output_dir, 3, 4)
    mtime_4 = os.path.getmtime(sample_4)
    result = train(with_steps(resumed, 8))
    assert result.steps == 8 and read_record(resumed)["steps_done"] == 8
    assert csv_steps(resumed) == [2, 4, 6, 8]
    assert os.path.getmtime(sample_4) == mtime_4  # Steps 1-4 were not run again.
    import keras

    a = keras.models.load_model(outputs.generator_path(straight.output_dir, 3)).get_weights()
    b = keras.models.load_model(outputs.generator_path(resumed.output_dir, 3)).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)  # Bit-exact: all random state is checkpointed.


def test_a_reused_gan_trains_a_digit_exactly_as_a_fresh_one(tmp_path, four_steps):
    import keras

    fresh, _ = four_steps
    reused = tiny_config(tmp_path / "reused")
    other = gan.DigitTraining(dataclasses.replace(reused, digits=(5,)), 5, blob_images(40, seed=7), blob_images(16, seed=1))
    shared = gan_step.GanStep(gan_state.GanState(reused.gan, other.train_images, other.seed))
    other.train(shared)  # Another digit first: different images, seed and weights.
    shared.state.reset(shared.state.real, seed=1)
    for optimizer in (shared.state.g_optimizer, shared.state.d_optimizer):
        assert int(optimizer.iterations) == 0
        assert float(optimizer.learning_rate) == pytest.approx(reused.gan.learning_rate)
    gan.DigitTraining(reused, 3, blob_images(64), blob_images(16, seed=1)).train(shared)
    a = keras.models.load_model(outputs.generator_path(fresh.output_dir, 3)).get_weights()
    b = keras.models.load_model(outputs.generator_path(reused.output_dir, 3)).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def test_discriminator_learning_rate_is_its_own_and_survives_a_reset(tmp_path):
    config = tiny_config(tmp_path).gan
    default = gan_state.GanState(config, data.to_float(blob_images(64)), seed=0)
    assert float(default.d_optimizer.learning_rate) == pytest.approx(config.learning_rate)
    slower = gan_state.GanState(dataclasses.replace(config, d_learning_rate=5e-5), data.to_float(blob_images(64)), seed=0)
    for _ in range(2):  # Built, then after a reset for the next digit.
        assert float(slower.d_optimizer.learning_rate) == pytest.approx(5e-5)
        assert float(slower.g_optimizer.learning_rate) == pytest.approx(config.learning_rate)
        slower.reset(slower.real, seed=1)


def test_sampler_is_the_moving_average_of_the_generator_weights(tmp_path):
    import tensorflow as tf

    momentum = 0.9
    config = tiny_config(tmp_path, ema_momentum=momentum).gan
    digit_gan = gan_state.GanState(config, data.to_float(blob_images(64)), seed=0)
    step = gan_step.GanStep(digit_gan)
    after = []
    for _ in range(2):
        step.train_steps(tf.constant(1, tf.int32))
        after.append([w.numpy() for w in digit_gan.generator.trainable_weights])
    averaged = [w.numpy() for w in gan_monitor.calibrated_generator(digit_gan, seed=0).trainable_weights]
    for first, second, average in zip(*after, averaged):
        assert np.abs(second - first).max() > 1e-5  # The generator trains.
        # The first step starts the average at the weights themselves.
        np.testing.assert_allclose(average, momentum * first + (1 - momentum) * second, rtol=1e-5, atol=1e-7)
        assert not np.allclose(average, second, rtol=0, atol=1e-6)
    plain = gan_state.GanState(dataclasses.replace(config, ema_momentum=0.0), data.to_float(blob_images(64)), seed=0)
    assert gan_monitor.calibrated_generator(plain, seed=0) is plain.generator


def test_without_recalibration_the_sampler_is_the_generator_with_its_moving_statistics(tmp_path):
    import keras

    config = tiny_config(tmp_path, recalibrate_batch_norm=False, batch_norm_momentum=0.9).gan
    digit_gan = gan_state.GanState(config, data.to_float(blob_images(64)), seed=0)
    gan_step.GanStep(digit_gan).train_step()  # Eager: one step moves the moving statistics.
    layers = [l for l in digit_gan.generator.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert {layer.momentum for layer in layers} == {0.9}  # The original's decay.
    moving = [layer.moving_mean.numpy().copy() for layer in layers]
    assert gan_monitor.calibrated_generator(digit_gan, seed=0) is digit_gan.generator
    for layer, before in zip(layers, moving):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), before)
    recalibrating = gan_state.GanState(dataclasses.replace(config, recalibrate_batch_norm=True), digit_gan.real, seed=0)
    gan_step.GanStep(recalibrating).train_step()
    gan_monitor.calibrated_generator(recalibrating, seed=0)
    changed = [l.moving_mean.numpy() for l in recalibrating.generator.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert not np.allclose(changed[0], moving[0])


def test_the_generator_step_can_judge_without_discriminator_dropout(tmp_path):
    import tensorflow as tf

    config = tiny_config(tmp_path, mixed_batches=False).gan
    digit_gan = gan_state.GanState(config, data.to_float(blob_images(64)), seed=0)
    images = tf.constant(data.to_float(blob_images(8)))
    d = digit_gan.discriminator
    np.testing.assert_array_equal(gan_step.discriminate(d, images, dropout=False), gan_step.discriminate(d, images, dropout=False))
    assert not np.array_equal(gan_step.discriminate(d, images), gan_step.discriminate(d, images))  # Dropout draws anew.
    weights = []
    for dropout in (True, False):
        trained = gan_state.GanState(dataclasses.replace(config, generator_step_dropout=dropout), digit_gan.real, seed=0)
        gan_step.GanStep(trained).train_step()  # Eager: no trace needed for one step.
        weights.append(trained.generator.get_weights()[0])
    assert not np.array_equal(*weights)  # The setting reaches the generator's gradient.


def test_each_purpose_draws_its_own_noise():
    draws = [np.random.default_rng(gan_monitor.noise_seed(13, 500, p)).standard_normal(4) for p in gan_monitor.NOISE_PURPOSES]
    assert len({tuple(d) for d in draws}) == len(gan_monitor.NOISE_PURPOSES)
    np.testing.assert_array_equal(np.random.default_rng(gan_monitor.noise_seed(13, 500, "quality")).standard_normal(4), draws[2])


def test_finished_digit_is_skipped_and_restart_starts_over(tmp_path, two_steps):
    config = copy_of(two_steps, tmp_path)
    path = outputs.generator_path(config.output_dir, 3)
    mtime, run_id = os.path.getmtime(path), read_record(config)["run_id"]
    assert train(config).steps == 2
    assert os.path.getmtime(path) == mtime
    train(dataclasses.replace(config, restart=True))
    assert read_record(config)["run_id"] != run_id and read_record(config)["steps_done"] == 2


def test_restarting_the_first_run_of_a_digit_keeps_its_other_runs(tmp_path):
    config = tiny_config(tmp_path, steps=2, runs_per_digit=2)
    runs = {run: gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1), run=run) for run in (1, 2)}
    for run in runs.values():
        assert run.train().status == "done"
    second = outputs.generator_path(config.output_dir, 3, run=2)
    mtime, run_id = os.path.getmtime(second), read_record(config)["run_id"]
    restarted = dataclasses.replace(config, restart=True)
    gan.DigitTraining(restarted, 3, blob_images(64), blob_images(16, seed=1)).train()
    assert read_record(config)["run_id"] != run_id
    assert os.path.getmtime(second) == mtime
    assert os.listdir(os.path.join(outputs.digit_dir(config.output_dir, 3, run=2), "checkpoints"))
    assert gan.run_seed(0, 3, 2) not in {gan.run_seed(seed, digit) for seed in range(10_000) for digit in range(10)}


def test_changed_settings_refuse_to_resume(tmp_path, two_steps):
    from mnistgan.errors import UserError

    config = copy_of(two_steps, tmp_path)
    with pytest.raises(UserError, match="batch_size 8 -> 16.*--restart"):
        train(dataclasses.replace(config, gan=dataclasses.replace(config.gan, batch_size=16, steps=4)))
    record = read_record(config)
    del record["config"]["ema_momentum"]  # As an older version wrote it.
    outputs.write_json(os.path.join(outputs.digit_dir(config.output_dir, 3), "run.json"), record)
    with pytest.raises(UserError, match="ema_momentum not recorded -> 0.0.*--restart"):
        train(with_steps(config, 4))


def test_a_record_from_before_d_learning_rate_existed_resumes(tmp_path, two_steps):
    config = copy_of(two_steps, tmp_path)
    record = read_record(config)
    del record["config"]["d_learning_rate"]  # Older versions trained D at the generator's rate, as None does.
    outputs.write_json(os.path.join(outputs.digit_dir(config.output_dir, 3), "run.json"), record)
    train(with_steps(config, 4))
    assert csv_steps(config)[-1] == 4
    assert read_record(config)["config"]["d_learning_rate"] is None


def test_nan_loss_stops_the_digit_and_keeps_the_last_good_checkpoint(tmp_path, four_steps):
    config = copy_of(four_steps, tmp_path)
    path = outputs.generator_path(config.output_dir, 3)
    with open(path, "rb") as f:
        good_generator = f.read()
    poisoned = gan.DigitTraining(with_steps(config, 8), 3, blob_images(64), blob_images(16, seed=1))
    poisoned.train_images[:] = np.nan
    result = poisoned.train()
    assert result.status == "failed" and result.steps == 4
    record = read_record(config)
    assert record["status"] == "failed" and "non-finite" in record["failure"] and record["steps_done"] == 4
    with open(path, "rb") as f:
        assert f.read() == good_generator
    assert csv_steps(config) == [2, 4]


KILL_SCRIPT = """
import pathlib, sys
sys.path.insert(0, {root!r})
from tests.conftest import blob_images, tiny_config
from mnistgan import gan
config = tiny_config(pathlib.Path(sys.argv[1]), steps=int(sys.argv[2]), sample_every=10, checkpoint_every=10)
print(gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1)).train().steps)
"""


def test_a_run_killed_mid_training_resumes_and_finishes(tmp_path):
    script = KILL_SCRIPT.format(root=ROOT)
    folder = tmp_path / "output" / "digit-3"
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), "2000"])
    deadline = time.monotonic() + 120
    while not (folder / "checkpoints" / "checkpoint").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    time.sleep(1.0)  # Kill it somewhere in the middle of later work.
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads((folder / "run.json").read_text())["steps_done"]
    assert 10 <= killed_at < 2000
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(killed_at + 20)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(killed_at + 20)
    steps = [int(line.split(",")[0]) for line in (folder / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == killed_at + 20


def test_train_digits_from_the_command_line_prints_progress_and_the_device_but_no_tensorflow_chatter(tmp_path, real_mnist_dir):
    # Two digits in two worker processes, as `make run` trains: the parent and each worker start TensorFlow.
    # Their runs 2 independent: a coverage-targeted one would first train the evaluator for minutes (test_coverage).
    result = run_main(
        "--train-digits", "3,5", "--workers", "2", "--steps", "4", "--batch-size", "8", "--sample-every", "2",
        "--checkpoint-every", "2", "--eval-every", "0", "--coverage-focus", "0", "--mnist-dir", real_mnist_dir,
        "--output-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for noise in ("oneDNN", "absl::InitializeLog", "Sharding callback", "cpu_feature_guard"):
        assert noise not in result.stderr
    assert "training on CPU" in result.stderr or "training on GPU" in result.stderr
    for digit in (3, 5):
        assert f"digit {digit}: step 2: held-out discriminator accuracy" in result.stderr
        assert os.path.exists(outputs.generator_path(str(tmp_path), digit))
        assert f"{digit} | done   |      4" in result.stdout
        with open(outputs.training_files(outputs.digit_dir(str(tmp_path), digit)).record) as f:
            command = json.load(f)["command"]  # Two workers: each run records the command that started it.
        assert command.startswith("./main.py --train-digits 3,5 --workers 2 --steps 4") and command.endswith(f"--output-dir {tmp_path}")


@pytest.fixture(scope="module")
def plain_two_steps(tmp_path_factory):
    """((d_loss, g_loss), generator weights as numpy) of the plain config after two steps from seed 0:
    what every technique is compared with, built and traced once (GanState.reset seeds everything)."""
    import tensorflow as tf

    config = tiny_config(tmp_path_factory.mktemp("plain")).gan
    plain = gan_step.GanStep(gan_state.GanState(config, data.to_float(blob_images(64)), seed=0))
    d_loss, g_loss, _ = plain.train_steps(tf.constant(2, tf.int32))
    return (float(d_loss), float(g_loss)), [w.numpy() for w in plain.state.generator.trainable_weights]


@pytest.mark.parametrize(
    "technique",
    [
        dict(loss="hinge"), dict(augment="translation,cutout"), dict(r1_gamma=10.0), dict(minibatch_std_group=4),
        dict(mode_seeking_weight=1.0), dict(spectral_norm=True), dict(generator_width=1.5), dict(discriminator_width=2.0),
        dict(packing=2), dict(lr_decay_fraction=0.9), dict(label_smoothing=0.1),
        dict(family="mlp", generator_width=1.0, discriminator_width=1.0),  # The mlp family has no widths.
    ],
    ids=lambda t: next(iter(t)),
)
def test_each_technique_trains_a_step_and_changes_it(tmp_path, technique, plain_two_steps):
    import tensorflow as tf

    plain_losses, plain_weights = plain_two_steps
    config = tiny_config(tmp_path).gan
    varied = gan_step.GanStep(gan_state.GanState(dataclasses.replace(config, **technique), data.to_float(blob_images(64)), seed=0))
    d_loss, g_loss, finite = varied.train_steps(tf.constant(2, tf.int32))
    assert bool(finite) and int(varied.state.step) == 2
    assert (float(d_loss), float(g_loss)) != plain_losses
    # Against the plain step's generator, so a term outside the gradient tape would fail here.
    varied_weights = varied.state.generator.trainable_weights
    assert any(w.shape != p.shape or np.abs(w.numpy() - p).max() > 0 for w, p in zip(varied_weights, plain_weights))


def test_r1_penalty_raises_the_discriminator_loss_by_its_weight(tmp_path):
    import tensorflow as tf

    config = tiny_config(tmp_path).gan
    images = data.to_float(blob_images(64))
    losses = {}
    for gamma in (0.0, 1000.0):
        digit_gan = gan_step.GanStep(gan_state.GanState(dataclasses.replace(config, r1_gamma=gamma), images, seed=0))
        real, fake = tf.constant(images[:8]), digit_gan.state.generator(np.zeros((8, 32), np.float32), training=True)
        losses[gamma] = float(digit_gan.d_loss(real, fake))
    assert losses[1000.0] > losses[0.0] + 1e-3


def test_negatives_teach_the_discriminator_to_reject_the_other_digits(tmp_path):
    import tensorflow as tf

    config = tiny_config(tmp_path).gan
    images, negatives = data.to_float(blob_images(64)), data.to_float(negative_images())
    judged = {}
    for weight in (0.0, 1.0):
        step = gan_step.GanStep(gan_state.GanState(dataclasses.replace(config, negative_weight=weight), images, 0, negatives=negatives))
        _, _, finite = step.train_steps(tf.constant(20, tf.int32))
        assert bool(finite)
        # Beside real images, as D judges them in training: how far below the real ones it puts the negatives.
        logits = gan_step.discriminate(step.state.discriminator, tf.concat([images[:32], negatives[:32]], 0), dropout=False)
        judged[weight] = float(tf.reduce_mean(logits[:32]) - tf.reduce_mean(logits[32:]))
    # Without negatives D has never seen a square and keeps them no further from the real discs than with them (1.1 against 2.9).
    assert judged[1.0] > judged[0.0] + 1.0
    # Real and generated images in separate batches (cGAN_mnist's way): the negatives join the generated batch.
    separate = dataclasses.replace(config, negative_weight=1.0, mixed_batches=False)
    step = gan_step.GanStep(gan_state.GanState(separate, images, 0, negatives=negatives))
    fake = step.state.generator(np.zeros((8, 32), np.float32), training=True)
    judged = step._judge_pair(tf.constant(images[:8]), fake, negatives=tf.constant(negatives[:8]))
    assert [int(logits.shape[0]) for logits in judged] == [8, 8, 8]
    assert bool(tf.math.is_finite(step.d_loss(tf.constant(images[:8]), fake, negatives=tf.constant(negatives[:8]))))


def test_the_negatives_weight_rises_linearly_over_the_warmup(tmp_path, monkeypatch):
    import tensorflow as tf

    assert [float(gan_step.warmup_factor(s, 4)) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert gan_step.warmup_factor(3, 0) == 1.0
    config = dataclasses.replace(tiny_config(tmp_path).gan, negative_weight=0.5, negative_warmup=4)
    images, negatives = data.to_float(blob_images(64)), data.to_float(negative_images())
    step = gan_step.GanStep(gan_state.GanState(config, images, 0, negatives=negatives))
    _, _, finite = step.train_steps(tf.constant(2, tf.int32))  # Compiled, at steps 0 and 1 of the warmup.
    assert bool(finite)
    # Only the negatives' term left, as 1 per step: the loss is the weight D's step gives it.
    monkeypatch.setattr(gan_step.losses, "negative_discriminator", lambda loss, logits, focus: tf.constant(1.0))
    step.d_loss_fn = lambda real_logits, fake_logits, target: tf.constant(0.0)
    fake = step.state.generator(np.zeros((8, 32), np.float32), training=True)
    weights = []
    for _ in range(4):  # Steps 2-5.
        weights.append(float(step.d_loss(tf.constant(images[:8]), fake, negatives=tf.constant(negatives[:8]))))
        step.state.step.assign_add(1)
    assert weights == pytest.approx([0.25, 0.375, 0.5, 0.5])


def test_snapshots_keep_the_generators_of_the_last_checkpoints(tmp_path, eight_steps_two_snapshots):
    config, _ = eight_steps_two_snapshots
    paths = outputs.snapshot_paths(config.output_dir, 3)
    assert [os.path.basename(p) for p in paths] == ["step-000006.keras", "step-000008.keras"]
    assert not outputs.snapshot_paths(tiny_config(tmp_path / "none").output_dir, 3)


def test_a_kill_right_after_the_last_checkpoint_leaves_every_snapshot(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, steps=8, snapshots=2, eval_every=0)
    die_after_checkpoint(monkeypatch, 8)
    with pytest.raises(Killed):
        train(config)
    monkeypatch.undo()
    assert train(config).steps == 8  # Finished: nothing is trained again.
    paths = outputs.snapshot_paths(config.output_dir, 3)
    assert [os.path.basename(p) for p in paths] == ["step-000006.keras", "step-000008.keras"]


def test_a_run_resumed_with_more_steps_keeps_only_the_last_checkpoints_snapshots(tmp_path, eight_steps_two_snapshots):
    config = copy_of(eight_steps_two_snapshots, tmp_path)
    train(with_steps(config, 12))
    paths = outputs.snapshot_paths(config.output_dir, 3)
    assert [os.path.basename(p) for p in paths] == ["step-000010.keras", "step-000012.keras"]


def test_a_packed_step_shows_the_discriminator_a_batch_of_packs_of_each_side(tmp_path, monkeypatch):
    config = dataclasses.replace(tiny_config(tmp_path).gan, packing=3)  # Batch 8: 8 packs of 3 images a side.
    step = gan_step.GanStep(gan_state.GanState(config, data.to_float(blob_images(64)), seed=0))
    seen = []
    discriminate = gan_step.discriminate

    def recording(discriminator, images, dropout=True, packing=1, labels=None):
        logits = discriminate(discriminator, images, dropout, packing, labels)
        seen.append((int(images.shape[0]), packing, int(logits.shape[0])))
        return logits

    monkeypatch.setattr(gan_step, "discriminate", recording)
    step.train_step()  # Eager: the patched function is the one called.
    # D's step (24 real and 24 generated images in one batch) and G's step (the same again).
    assert seen == [(48, 3, 16), (48, 3, 16)]
    negatives = dataclasses.replace(config, negative_weight=0.5)
    step = gan_step.GanStep(gan_state.GanState(negatives, data.to_float(blob_images(64)), 0, negatives=data.to_float(negative_images())))
    seen.clear()
    step.train_step()
    assert seen == [(72, 3, 24), (48, 3, 16)]  # D's batch gains 8 packs of 3 negatives; G's step shows it none.
    accuracy = gan_monitor.heldout_accuracy(step.state, step.state.generator, data.to_float(blob_images(10)), 7, [0, 0, 1])
    assert 0 <= accuracy <= 1  # 3 packs of real and 2 of generated images: whole packs only.


def test_learning_rates_fall_linearly_to_zero_over_the_last_share_of_the_steps(tmp_path):
    assert [float(gan_step.decay_factor(s, 8, 0.5)) for s in (0, 4, 5, 6, 7)] == [1.0, 1.0, 0.75, 0.5, 0.25]
    assert gan_step.decay_factor(7, 8, 0.0) == 1.0
    config = dataclasses.replace(tiny_config(tmp_path).gan, d_learning_rate=1e-4, lr_decay_fraction=0.5)
    step = gan_step.GanStep(gan_state.GanState(config, data.to_float(blob_images(64)), seed=0))
    for _ in range(4):  # Steps 0-3 of 4; step 3 trains at (4 - 3) / 2 of the base rates.
        step.train_step()
    assert float(step.state.g_optimizer.learning_rate) == pytest.approx(config.learning_rate / 2)
    assert float(step.state.d_optimizer.learning_rate) == pytest.approx(5e-5)
    step.state.reset(step.state.real, seed=1)  # The next digit starts at the base rates.
    assert float(step.state.d_optimizer.learning_rate) == pytest.approx(1e-4)


@pytest.mark.parametrize(
    "settings",
    [
        dict(packing=2, lr_decay_fraction=0.75, generator_width=0.5, discriminator_width=1.5),
        dict(family="mlp", latent_dim=100, label_smoothing=0.1, beta1=0.9),
        dict(negative_weight=0.3, negative_focus=1.0),
    ],
    ids=["packing-decay-widths", "mlp-family", "negatives"],
)
def test_a_run_killed_at_a_checkpoint_resumes_to_the_straight_runs_weights(tmp_path, monkeypatch, settings):
    settings = dict(steps=8, eval_every=0, **settings)
    straight, killed = tiny_config(tmp_path / "straight", **settings), tiny_config(tmp_path / "killed", **settings)
    train(straight)
    die_after_checkpoint(monkeypatch, 4)
    with pytest.raises(Killed):
        train(killed)
    monkeypatch.undo()
    assert train(killed).steps == 8
    assert_same_generators(straight.output_dir, killed.output_dir)


def test_the_mlp_family_trains_from_the_command_line_into_the_same_files(tmp_path, real_mnist_dir):
    import keras

    result = run_main(
        "--train-digits", "3", "--family", "mlp", "--runs-per-digit", "1", "--steps", "4", "--sample-every", "2",
        "--checkpoint-every", "2", "--eval-every", "0", "--mnist-dir", real_mnist_dir, "--output-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    generator = keras.models.load_model(outputs.generator_path(str(tmp_path), 3))
    assert generator.input_shape == (None, 100) and generator.count_params() == 114_064
    assert read_record(dataclasses.replace(tiny_config(tmp_path), output_dir=str(tmp_path)))["config"]["family"] == "mlp"
    assert csv_steps(dataclasses.replace(tiny_config(tmp_path), output_dir=str(tmp_path))) == [2, 4]
    assert os.path.exists(outputs.sample_path(str(tmp_path), 3, 4)) and os.path.exists(os.path.join(str(tmp_path), "generators.json"))
