import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnistgan import classifier, config as config_lib, data, generators, outputs
from mnistgan.errors import UserError
from tests.conftest import ROOT, blob_images, run_main


def toy_digits(n_per_digit, seed):
    """uint8 images and labels, `n_per_digit` of each digit in random order; digit d's have d bright rows."""
    labels = np.repeat(np.arange(10), n_per_digit)
    images = blob_images(len(labels), seed=seed)
    for i, label in enumerate(labels):
        images[i, :label] = 255
    order = np.random.default_rng(seed).permutation(len(labels))
    return images[order], labels[order]


def tiny_mnist(n_per_digit=20):
    """A split with `n_per_digit` training and as many other test images of each digit (toy_digits)."""
    return data.split(*toy_digits(n_per_digit, seed=0), *toy_digits(n_per_digit, seed=1), validation_size=50)


def constant_generator(value, latent_dim=32):
    """A generator that draws the same image, every pixel `value`, whatever the noise."""
    z = keras.Input((latent_dim,))
    flat = keras.layers.Dense(28 * 28, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(value))(z)
    return keras.Model(z, keras.layers.Reshape((28, 28, 1))(flat))


def constant_samplers(latent_dim=4):
    """Ten one-sampler lists of tiny generators; digit d's draws every pixel at (d + 1) / 11, whatever the noise."""
    return [[generators.Sampler(constant_generator((digit + 1) / 11, latent_dim))] for digit in range(10)]


def kept_samplers(output_dir, noise_scale=1.0):
    """What a classifier without a snapshot mixture draws: each digit's generator.keras."""
    return [[sampler] for sampler in generators.kept_samplers(output_dir, noise_scale=noise_scale)]


def digit_of(images):
    """The digit whose constant generator drew each image: int (n,)."""
    return np.round(np.asarray(images).reshape(len(images), -1).mean(axis=1) * 11 - 1).astype(int)


def small_generator(latent_dim=32):
    """What a consumer needs of a digit generator, at a sliver of the DCGAN's size: noise (n, latent) ->
    images (n, 28, 28, 1) in [0, 1] that change with the noise."""
    z = keras.Input((latent_dim,))
    # No bias: a traced MatMul + BiasAdd + Sigmoid is fused and rounds differently from the eager ops,
    # and the stream's resume test compares the two bit for bit (as the DCGAN's unfused ops pass it).
    flat = keras.layers.Dense(28 * 28, use_bias=False, activation="sigmoid")(z)
    return keras.Model(z, keras.layers.Reshape((28, 28, 1))(flat))


def save_generators(output_dir, latent_dim=32):
    """Saves a small generator.keras for every digit (the consumers' tests need no DCGAN)."""
    for digit in range(10):
        path = outputs.generator_path(output_dir, digit)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        small_generator(latent_dim).save(path)


@pytest.fixture(scope="module")
def generators_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("generators"))
    save_generators(folder)
    return folder


def tiny_config(output_dir, sources=("synthetic",), steps=6):
    return config_lib.Config(
        action="train-mnist",
        data_sources=sources,
        output_dir=output_dir,
        classifier=config_lib.ClassifierConfig(steps=steps, batch_size=20, eval_every=3, checkpoint_every=3),
    )


def test_stream_yields_balanced_fresh_batches_in_range(generators_dir):
    stream = classifier.SyntheticStream(kept_samplers(generators_dir), batch_size=50, seed=0)
    images_1, labels_1 = stream()
    images_2, _ = stream()
    assert images_1.shape == (50, 28, 28, 1) and images_1.dtype == tf.float32 and labels_1.shape == (50,)
    assert float(tf.reduce_min(images_1)) >= 0.0 and float(tf.reduce_max(images_1)) <= 1.0
    assert np.bincount(labels_1.numpy(), minlength=10).tolist() == [5] * 10
    assert not np.allclose(images_1.numpy(), images_2.numpy())  # New noise every batch.


def test_every_streamed_image_carries_its_own_generators_label():
    stream = classifier.SyntheticStream(constant_samplers(), batch_size=23, seed=2)
    for _ in range(5):
        images, labels = (t.numpy() for t in stream())
        flat = images.reshape(len(images), -1)
        np.testing.assert_array_equal(flat.min(axis=1), flat.max(axis=1))  # Each image is one generator's.
        np.testing.assert_array_equal(digit_of(images), labels)
    assert len(set(labels.tolist())) == 10


def test_the_split_tests_on_images_it_never_trains_on():
    mnist = tiny_mnist()
    seen = {image.tobytes() for image in np.concatenate([mnist.train_images, mnist.validation_images])}
    assert not any(image.tobytes() in seen for image in mnist.test_images)


def test_stream_with_uneven_batch_is_balanced_within_one(generators_dir):
    stream = classifier.SyntheticStream(kept_samplers(generators_dir), batch_size=23, seed=1)
    totals = np.zeros(10, np.int64)
    for _ in range(20):
        counts = np.bincount(stream()[1].numpy(), minlength=10)
        assert counts.sum() == 23 and counts.max() - counts.min() <= 1
        totals += counts
    assert totals.min() >= 40 and totals.max() <= 52  # The extra images rotate between digits.


def test_stream_draws_several_batches_at_once_and_a_checkpoint_resumes_mid_draw(tmp_path, generators_dir):
    samplers = kept_samplers(generators_dir)
    stream = classifier.SyntheticStream(samplers, batch_size=20, seed=2, batches_per_draw=3)
    next_batch = tf.function(stream)
    first = [next_batch() for _ in range(4)]  # One whole draw and the first batch of the next.
    for images, labels in first:
        assert np.bincount(labels.numpy(), minlength=10).tolist() == [2] * 10
    assert len({images.numpy().tobytes() for images, _ in first}) == 4  # Every batch is new.
    checkpoint = tf.train.Checkpoint(**stream.checkpoint_state())
    path = checkpoint.save(str(tmp_path / "stream"))
    expected = [next_batch() for _ in range(3)]
    resumed = classifier.SyntheticStream(samplers, batch_size=20, seed=99, batches_per_draw=3)
    tf.train.Checkpoint(**resumed.checkpoint_state()).restore(path).assert_consumed()
    for (images, labels), (want_images, want_labels) in zip([resumed() for _ in range(3)], expected):
        np.testing.assert_array_equal(images.numpy(), want_images.numpy())
        np.testing.assert_array_equal(labels.numpy(), want_labels.numpy())


def test_a_mixture_stream_draws_each_digit_from_all_its_snapshots_in_equal_shares():
    samplers = [[generators.Sampler(constant_generator(d / 10 + shift)) for shift in (0, 0.05)] for d in range(10)]
    stream = classifier.SyntheticStream(samplers, batch_size=40, seed=0, batches_per_draw=5)
    values = {d: [] for d in range(10)}
    for _ in range(5):
        images, labels = stream()
        for image, label in zip(images.numpy(), labels.numpy()):
            values[int(label)].append(round(float(image.mean()), 3))
    for digit, drawn in values.items():
        assert sorted(set(drawn)) == [round(digit / 10, 3), round(digit / 10 + 0.05, 3)]  # Its own snapshots only.
        assert drawn.count(round(digit / 10, 3)) == len(drawn) // 2  # Equal shares.


def test_noise_scale_scales_the_generators_input(generators_dir):
    drawn = {}
    for scale in (1.0, 2.0):
        stream = classifier.SyntheticStream(kept_samplers(generators_dir, scale), batch_size=10, seed=3, batches_per_draw=1)
        drawn[scale] = stream()[0].numpy()
    assert not np.allclose(drawn[1.0], drawn[2.0])


def test_a_digit_streams_at_its_own_noise_scale(generators_dir):
    cfg = config_lib.ClassifierConfig(noise_scale=1.2, digit_noise_scales="3=0.5", snapshot_mixture=False)
    samplers = generators.classifier_samplers(generators_dir, cfg)
    assert [s.noise_scale for (s,) in samplers] == [1.2, 1.2, 1.2, 0.5, 1.2, 1.2, 1.2, 1.2, 1.2, 1.2]
    plain = generators.classifier_samplers(generators_dir, dataclasses.replace(cfg, digit_noise_scales=""))
    assert not np.allclose(samplers[3][0].draw(4, seed=0), plain[3][0].draw(4, seed=0))
    np.testing.assert_array_equal(samplers[4][0].draw(4, seed=0), plain[4][0].draw(4, seed=0))


def test_snapshot_mixture_without_snapshots_names_the_command(tmp_path):
    save_generators(str(tmp_path))
    with pytest.raises(UserError, match=r"no snapshots for digit\(s\) 0,1,2,3,4,5,6,7,8,9.*--snapshots 4.*--snapshot-mixture=false"):
        generators.snapshot_samplers(str(tmp_path))


def test_the_mixture_draws_every_run_of_a_digit_and_names_a_digit_without_snapshots(tmp_path):
    output = str(tmp_path)
    save_generators(output)
    for digit in range(10):
        for run in (1, 2):
            path = outputs.snapshot_path(output, digit, 10 * run, run)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(outputs.generator_path(output, digit), path)
        outputs.write_json(outputs.training_files(outputs.digit_dir(output, digit, 2)).record, {"status": "done"})
    assert [len(samplers) for samplers in generators.snapshot_samplers(output)] == [2] * 10
    assert [s.entry.run for s in generators.snapshot_samplers(output, digits=(6,))[0]] == [1, 2]
    shutil.rmtree(outputs.snapshot_paths(output, 6, run=1)[0].rsplit(os.sep, 1)[0])
    shutil.rmtree(outputs.digit_dir(output, 6, run=2))
    with pytest.raises(UserError, match=r"no snapshots for digit\(s\) 6 "):
        generators.snapshot_samplers(output)


def test_missing_generators_are_named_with_the_command(tmp_path, generators_dir):
    save_generators(str(tmp_path))
    os.remove(outputs.generator_path(str(tmp_path), 4))
    os.remove(outputs.generator_path(str(tmp_path), 7))
    with pytest.raises(UserError, match=r"digit\(s\) 4,7 .*--train-digits 4,7"):
        generators.kept_samplers(str(tmp_path))


def test_corrupt_generator_is_refused(tmp_path):
    save_generators(str(tmp_path))
    with open(outputs.generator_path(str(tmp_path), 2), "wb") as f:
        f.write(b"not a keras file")
    with pytest.raises(UserError, match=r"digit-2/generator.keras is damaged \(not a .keras archive\); .*--train-digits 2 --restart"):
        generators.kept_samplers(str(tmp_path))


def test_accuracy_report():
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.array([0, 1, 1, 1, 2])
    report = classifier.accuracy_report(predictions, labels)
    assert report["test_accuracy"] == pytest.approx(0.8)
    assert report["per_digit_accuracy"][:4] == [0.5, 1.0, 1.0, None] and report["min_digit"] == 0
    assert report["confusion"][0][:2] == [1, 1] and np.sum(report["confusion"]) == 5


def test_synthetic_run_writes_model_record_and_heatmap(tmp_path, generators_dir):
    output = str(tmp_path / "out")
    shutil.copytree(generators_dir, output)
    mnist = tiny_mnist()
    result = classifier.DataSourceClassifier(tiny_config(output), "synthetic", mnist).train()
    folder = outputs.classifier_dir(output, "synthetic")
    for name in ("model.keras", "confusion.png", "metrics.csv", "run.json"):
        assert os.path.getsize(os.path.join(folder, name)) > 0
    with open(outputs.results_path(output)) as f:
        records = [json.loads(line) for line in f]
    assert len(records) == 1
    record = records[0]
    assert record["data_source"] == "synthetic" and record["steps_done"] == 6 and record["impressions"] == 120
    # The record's numbers are those of the saved model on the test split.
    model = keras.models.load_model(os.path.join(folder, "model.keras"))
    predictions = np.argmax(model.predict(data.to_float(mnist.test_images), verbose=0), axis=1)
    assert record["test_accuracy"] == float(np.mean(predictions == mnist.test_labels))
    assert record["confusion"] == classifier.accuracy_report(predictions, mnist.test_labels)["confusion"]
    assert np.sum(record["confusion"]) == len(mnist.test_labels) == 200
    assert isinstance(record["generation_share"], float)  # Synthetic runs time their generation.
    assert set(record["generator_run_ids"]) == {str(d) for d in range(10)}
    assert result.record["test_accuracy"] == record["test_accuracy"]
    # A second run finds it finished: measured again, no duplicate record.
    classifier.DataSourceClassifier(tiny_config(output), "synthetic", tiny_mnist()).train()
    with open(outputs.results_path(output)) as f:
        assert len(f.readlines()) == 1


def test_seconds_per_batch_leaves_the_training_stream_alone():
    stream = classifier.SyntheticStream(constant_samplers(), batch_size=10, seed=0)
    state = stream.rng.state.numpy()
    assert classifier.seconds_per_batch(stream, repeats=2) > 0
    np.testing.assert_array_equal(stream.rng.state.numpy(), state)


def test_real_run_resumes_and_compare_prints_the_table(tmp_path, generators_dir, capsys):
    output = str(tmp_path / "out")
    shutil.copytree(generators_dir, output)
    mnist = tiny_mnist()
    classifier.DataSourceClassifier(tiny_config(output, ("real",), steps=3), "real", mnist).train()
    first = os.stat(os.path.join(outputs.classifier_dir(output, "real"), "checkpoints", "ckpt-3.index"))
    config = tiny_config(output, ("real", "synthetic"), steps=6)
    assert classifier.train_and_report(config, mnist) == 0
    table = capsys.readouterr().out
    assert (
        "training data  | validation accuracy | test accuracy | per-digit test accuracy (min digit) | impressions | wall time"
        in table
    )
    assert "real " in table and "synthetic " in table
    record = json.load(open(os.path.join(outputs.classifier_dir(output, "real"), "run.json")))
    assert record["steps_done"] == 6 and "generation_share" not in record
    csv = outputs.MetricsCsv(os.path.join(outputs.classifier_dir(output, "real"), "metrics.csv"), ("step",))
    assert csv.steps() == [3, 6]
    # Resumed, not restarted: a run from step 0 would have written checkpoint 3 again.
    again = os.stat(os.path.join(outputs.classifier_dir(output, "real"), "checkpoints", "ckpt-3.index"))
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


def constant_config(output_dir, steps, checkpoint_every=3):
    """A small, fast classifier on the constant generators' digits."""
    classifier_config = config_lib.ClassifierConfig(
        steps=steps, batch_size=20, feature_size=64, eval_every=max(steps // 2, 1), checkpoint_every=checkpoint_every
    )
    return config_lib.Config(action="train-mnist", output_dir=str(output_dir), classifier=classifier_config)


def final_weights(config, source="synthetic"):
    model = keras.models.load_model(os.path.join(outputs.classifier_dir(config.output_dir, source), "model.keras"))
    return model.get_weights()


@pytest.mark.parametrize("source", ["synthetic", "real", "real+synthetic"])
def test_a_resumed_run_ends_bit_identical_to_a_straight_one(tmp_path, source):
    mnist, samplers = tiny_mnist(), constant_samplers()
    straight = constant_config(tmp_path / "straight", steps=6)
    classifier.DataSourceClassifier(straight, source, mnist, samplers).train()
    resumed = constant_config(tmp_path / "resumed", steps=3)
    classifier.DataSourceClassifier(resumed, source, mnist, samplers).train()
    resumed = dataclasses.replace(resumed, classifier=dataclasses.replace(resumed.classifier, steps=6))
    record = classifier.DataSourceClassifier(resumed, source, mnist, samplers).train().record
    for a, b in zip(final_weights(straight, source), final_weights(resumed, source)):
        np.testing.assert_array_equal(a, b)  # A restart from step 0, a new stream, or real batches from the start would differ.
    assert (record["synthetic_share"], record["real_per_digit"]) == ({"synthetic": 1.0, "real": 0.0}.get(source, 0.5), 0)


def is_generated(images):
    """Whether each image is one of the constant generators' (every pixel one value in (0, 1)), not a real toy digit."""
    flat = np.asarray(images).reshape(len(images), -1)
    return (flat.min(axis=1) == flat.max(axis=1)) & (flat.max(axis=1) < 1)


def test_a_real_plus_synthetic_batch_holds_the_share_of_generated_images_in_random_order(tmp_path):
    config = dataclasses.replace(constant_config(tmp_path, steps=3), data_sources=("real+synthetic",))
    config = dataclasses.replace(config, classifier=dataclasses.replace(config.classifier, synthetic_share=0.3))
    stream = classifier.DataSourceClassifier(config, "real+synthetic", tiny_mnist(), constant_samplers())._batch_source(0)
    positions = set()
    for _ in range(6):
        images, labels = (t.numpy() for t in stream())
        generated = is_generated(images)
        assert images.shape == (20, 28, 28, 1) and generated.sum() == 6  # round(0.3 * 20)
        np.testing.assert_array_equal(digit_of(images[generated]), labels[generated])  # Labels as drawn,
        real = images[~generated][..., 0]
        np.testing.assert_array_equal((real == 1).all(axis=2).sum(axis=1), labels[~generated])  # and the real ones' own.
        positions.update(np.flatnonzero(generated).tolist())
    assert len(positions) > 10  # Shuffled within the batch, not always the first six.


def test_real_per_digit_gives_a_classifier_the_first_images_of_each_digit_and_nothing_else(tmp_path):
    mnist = tiny_mnist()
    config = tiny_config(str(tmp_path), ("real",))
    config = dataclasses.replace(config, classifier=dataclasses.replace(config.classifier, real_per_digit=3))
    scarce = classifier.DataSourceClassifier(config, "real", mnist)
    assert np.bincount(scarce.mnist.train_labels, minlength=10).tolist() == [3] * 10
    assert scarce.mnist.validation_images is mnist.validation_images and scarce.mnist.test_images is mnist.test_images
    allowed = {image.tobytes() for image in data.to_float(scarce.mnist.train_images)}
    next_batch = scarce._batch_source(0)
    for _ in range(5):
        assert all(image.tobytes() in allowed for image in next_batch()[0].numpy())


def test_real_data_learns_the_toy_task(tmp_path):
    """The real-data path actually trains: a toy task it must learn in a few hundred steps."""
    config = tiny_config(str(tmp_path), ("real",), steps=150)
    # A checkpoint and a validation every 50 steps, not 3: the record measures the final model either way.
    config = dataclasses.replace(config, classifier=dataclasses.replace(config.classifier, eval_every=50, checkpoint_every=50))
    record = classifier.DataSourceClassifier(config, "real", tiny_mnist(60)).train().record
    assert record["test_accuracy"] > 0.9 and record["validation_accuracy"] > 0.9


def test_train_mnist_refuses_missing_generators_from_the_command_line(tmp_path, real_mnist_dir):
    result = run_main("--train-mnist", "--mnist-dir", real_mnist_dir, "--output-dir", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--train-digits 0,1,2,3,4,5,6,7,8,9" in result.stderr.strip().splitlines()[-1]


def test_train_mnist_compare_from_the_command_line(tmp_path, generators_dir, real_mnist_dir):
    """The default preset's stream: each digit from the mixture of both its runs' snapshots."""
    output = str(tmp_path / "out")
    shutil.copytree(generators_dir, output)
    for digit in range(10):
        for run, step in ((1, 10), (1, 20), (2, 10), (2, 20)):
            path = outputs.snapshot_path(output, digit, step, run)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(outputs.generator_path(output, digit), path)
        outputs.write_json(outputs.training_files(outputs.digit_dir(output, digit, 2)).record, {"status": "done"})
    result = run_main(
        "--train-mnist", "--compare", "--classifier-steps", "20", "--classifier-batch-size", "10",
        "--mnist-dir", real_mnist_dir, "--output-dir", output,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "real " in result.stdout and "synthetic " in result.stdout and "real+synthetic " in result.stdout
    for source in ("real", "real+synthetic"):
        assert os.path.exists(os.path.join(outputs.classifier_dir(output, source), "confusion.png"))
    assert [r["synthetic_share"] for r in outputs.read_results(output)] == [1.0, 0.0, 0.5]  # --compare: all three.


def test_checkpoints_do_not_wait_for_validation_steps(tmp_path):
    config = tiny_config(str(tmp_path), ("real",), steps=6)
    config = dataclasses.replace(config, classifier=dataclasses.replace(config.classifier, eval_every=4, checkpoint_every=3))
    classifier.DataSourceClassifier(config, "real", tiny_mnist()).train()
    folder = os.path.join(outputs.classifier_dir(str(tmp_path), "real"), "checkpoints")
    assert sorted(name for name in os.listdir(folder) if name.endswith(".index")) == ["ckpt-3.index", "ckpt-6.index"]


KILL_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.test_classifier import constant_config, constant_samplers, tiny_mnist
from mnistgan import classifier
config = constant_config(sys.argv[1], steps=int(sys.argv[2]), checkpoint_every=20)
print(classifier.DataSourceClassifier(config, "synthetic", tiny_mnist(), constant_samplers()).train().record["steps_done"])
"""


def test_a_classifier_killed_at_a_random_moment_resumes_to_the_straight_runs_weights(tmp_path):
    # 280 steps after the first checkpoint: seconds of training left when the kill falls, up to 1 s after it.
    script, steps = KILL_SCRIPT.format(root=ROOT), 300
    folder = tmp_path / "killed" / "classifier-synthetic"
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "killed"), str(steps)])
    deadline = time.monotonic() + 120
    while not (folder / "checkpoints" / "checkpoint").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    delay = random.uniform(0.0, 1.0)
    time.sleep(delay)
    assert process.poll() is None, f"finished before the kill ({delay:.2f} s after the first checkpoint)"
    process.send_signal(signal.SIGKILL)
    process.wait()
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "killed"), str(steps)], capture_output=True, text=True)
    assert result.returncode == 0, f"killed {delay:.2f} s after the first checkpoint: {result.stderr}"
    assert result.stdout.strip().splitlines()[-1] == str(steps)
    straight = constant_config(tmp_path / "straight", steps=steps, checkpoint_every=20)
    classifier.DataSourceClassifier(straight, "synthetic", tiny_mnist(), constant_samplers()).train()
    for a, b in zip(final_weights(straight), final_weights(constant_config(tmp_path / "killed", steps))):
        np.testing.assert_array_equal(a, b, err_msg=f"killed {delay:.2f} s after the first checkpoint")
    steps_logged = outputs.MetricsCsv(str(folder / "metrics.csv"), classifier.CSV_FIELDS).steps()
    assert steps_logged == [steps // 2, steps]
    assert len(outputs.read_results(str(tmp_path / "killed"))) == 1


def test_a_change_of_generators_says_which_runs_changed():
    recorded = {"3": "a", "5": "b"}
    assert classifier._changed_runs(recorded, {"3": "a", "5": "c", "3/run-2": "d"}) == "runs added: 3/run-2; trained again: 5"
    assert classifier._changed_runs(recorded, {"3": "a"}) == "runs gone: 5"


def test_a_classifier_resumed_where_auto_chooses_otherwise_keeps_its_precision(tmp_path, caplog):
    output = str(tmp_path / "out")
    mnist = tiny_mnist()
    started = dataclasses.replace(tiny_config(output, ("real",), steps=3), machine_precision="mixed_bfloat16")
    classifier.DataSourceClassifier(started, "real", mnist).train()
    record_path = os.path.join(outputs.classifier_dir(output, "real"), "run.json")
    assert json.load(open(record_path))["config"]["precision"] == "mixed_bfloat16"
    # The same folder where auto chooses float32 (bfloat16 slower there): the run goes on in bfloat16.
    moved = dataclasses.replace(tiny_config(output, ("real",), steps=6), machine_precision="float32")
    with caplog.at_level("INFO"):
        record = classifier.DataSourceClassifier(moved, "real", mnist).train().record
    assert record["steps_done"] == 6 and record["config"]["precision"] == "mixed_bfloat16"
    assert json.loads(open(outputs.results_path(output)).read().splitlines()[-1])["config"]["precision"] == "mixed_bfloat16"
    assert "continues in bfloat16, the precision it started in (auto chooses float32 here)" in caplog.text
