import numpy as np

from mnistgan import classifier, config as config_lib, data, gan, gan_state, generators, outputs, rejection
from tests.conftest import blob_images, outcomes_before_tensorflow, tiny_config
from tests.test_classifier import save_generators


def brightness_generator():
    """A plain generator whose images grow brighter with the first noise value (uniform grey images)."""
    import keras

    z = keras.Input((4,))
    x = keras.layers.Dense(784, activation="sigmoid", kernel_initializer="zeros", bias_initializer="zeros")(z)
    model = keras.Model(z, keras.layers.Reshape((28, 28, 1))(x))
    kernel, bias = model.layers[1].get_weights()
    kernel[0, :] = 2.0
    model.layers[1].set_weights([kernel, bias])
    return model


def brightness_discriminator():
    """A D that calls bright images real: logit 20 * (mean brightness - 0.5)."""
    import keras

    images = keras.Input((28, 28, 1))
    x = keras.layers.GlobalAveragePooling2D()(images)
    logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(20.0), bias_initializer=keras.initializers.Constant(-10.0))(x)
    return keras.Model(images, logit)


def test_acceptance_grows_with_the_logit_and_stays_finite():
    import tensorflow as tf

    logits = tf.constant([-5.0, -1.0, 0.0, 2.0, 3.0])
    log_p = rejection.log_acceptance(logits, max_logit=3.0).numpy()
    assert np.all(np.isfinite(log_p)) and np.all(np.diff(log_p) > 0) and np.all(log_p <= 0)
    # A logit above the burn-in's largest one becomes the new largest.
    assert np.isfinite(rejection.log_acceptance(tf.constant([9.0, 1.0]), max_logit=3.0).numpy()).all()


def test_rejection_keeps_what_the_discriminator_calls_real_and_exactly_as_many_images():
    import tensorflow as tf

    plain = generators.Sampler(brightness_generator())
    filtered = rejection.RejectionSampler(plain, brightness_discriminator(), candidates=4, seed=0)
    kept = filtered.draw(300, seed=1)
    unfiltered = plain.draw(300, seed=1)
    assert kept.shape == (300, 28, 28, 1) and kept.dtype == np.float32
    assert kept.mean() > unfiltered.mean() + 0.1
    # In the stream's graph too, from the stream's own random state.
    rng = tf.random.Generator.from_seed(0)
    assert tf.function(lambda: filtered.sample(rng, 7))().shape == (7, 28, 28, 1)
    assert filtered.describe()["rejection_candidates"] == 4


def test_the_discriminator_is_the_runs_own_from_its_last_checkpoint(tmp_path):
    config = tiny_config(tmp_path, eval_every=0, snapshots=2, minibatch_std_group=4, discriminator_width=0.5)
    gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1)).train()
    loaded = rejection.load_discriminator(config.output_dir, generators.Entry("digit-3/generator.keras"), 3)
    state = gan_state.GanState(config.gan, data.to_float(blob_images(64)), seed=5)
    state.checkpoint.restore(outputs.latest_checkpoint(outputs.training_files(outputs.digit_dir(config.output_dir, 3)).checkpoints, ""))
    for a, b in zip(loaded.get_weights(), state.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The classifier's samplers are filtered by it, and its stream draws from them.
    samplers = generators.classifier_samplers(
        config.output_dir, config_lib.ClassifierConfig(snapshot_mixture=True, rejection_candidates=3), digits=(3,)
    )
    assert [type(s) for s in samplers[0]] == [rejection.RejectionSampler] * 2
    stream = classifier.SyntheticStream(samplers * 10, batch_size=10, seed=0, batches_per_draw=2)
    images, labels = stream()
    assert images.shape == (10, 28, 28, 1) and labels.shape == (10,)


def brightness_pack_discriminator():
    """A D of packs of two that is additive in its images: 10 * (first image's mean brightness) + 5 * (second's) - 10."""
    import keras

    packs = keras.Input((28, 28, 2))
    x = keras.layers.GlobalAveragePooling2D()(packs)
    dense = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(-10.0))
    logit = dense(x)
    dense.set_weights([np.array([[10.0], [5.0]], np.float32), np.array([-10.0], np.float32)])
    return keras.Model(packs, logit)


class RecordingPackDiscriminator:
    """A D of packs of two that keeps every batch it judges and calls each pack's first image real by its brightness."""

    input_shape = (None, 28, 28, 2)

    def __init__(self):
        self.batches = []

    def __call__(self, packs, training=False):
        self.batches.append(np.asarray(packs))
        return np.asarray(packs)[:, :, :, :1].mean(axis=(1, 2))


def test_a_packed_discriminator_scores_each_image_by_its_own_term():
    """Packed in turn with every fixed partner set, an additive D's score of image x is its own term plus one constant."""
    import tensorflow as tf

    plain = generators.Sampler(brightness_generator())
    filtered = rejection.RejectionSampler(plain, brightness_pack_discriminator(), candidates=4, seed=0)
    assert filtered.partners.shape == (rejection.PARTNER_SETS, 28, 28, 1)
    images = plain.draw(50, seed=2)
    scores = filtered._logits(tf.constant(images)).numpy()
    own = 10.0 * images.mean(axis=(1, 2, 3))  # Not 5 * ...: the judged image is the pack's first.
    np.testing.assert_allclose(scores - own, np.full(50, (scores - own).mean()), atol=1e-4)
    kept = filtered.draw(300, seed=1)
    assert kept.shape == (300, 28, 28, 1) and kept.mean() > plain.draw(300, seed=1).mean() + 0.1


def test_neighbouring_packs_hold_different_partners_and_each_image_meets_every_set():
    """D's minibatch standard deviation groups neighbouring packs: in training they held independent images."""
    import tensorflow as tf

    discriminator = RecordingPackDiscriminator()
    filtered = rejection.RejectionSampler(generators.Sampler(brightness_generator()), discriminator, candidates=2, seed=0)
    discriminator.batches.clear()
    images = tf.constant(generators.Sampler(brightness_generator()).draw(9, seed=3))
    filtered._logits(images)
    assert len(discriminator.batches) == rejection.PARTNER_SETS
    sets = [[next(s for s in range(rejection.PARTNER_SETS) if np.array_equal(pack[..., 1], filtered.partners[s, ..., 0])) for pack in batch]
            for batch in discriminator.batches]  # fmt: skip
    for batch, met in zip(discriminator.batches, sets):
        np.testing.assert_array_equal(batch[..., 0], images.numpy()[..., 0])
        assert all(len(set(met[i : i + 4])) == len(met[i : i + 4]) for i in range(0, len(met), 4))
    assert all(sorted(column) == list(range(rejection.PARTNER_SETS)) for column in zip(*sets))


def test_a_packed_runs_discriminator_filters_its_stream(tmp_path):
    """A run trained with packs of two (the default preset's) lends its D to rejection sampling."""
    config = tiny_config(tmp_path, eval_every=0, packing=2)
    gan.DigitTraining(config, 3, blob_images(64), blob_images(16, seed=1)).train()
    samplers = generators.classifier_samplers(
        config.output_dir, config_lib.ClassifierConfig(snapshot_mixture=False, rejection_candidates=3), digits=(3,)
    )
    (sampler,) = samplers[0]
    assert isinstance(sampler, rejection.RejectionSampler) and sampler.discriminator.input_shape[-1] == 2
    assert sampler.draw(7, seed=0).shape == (7, 28, 28, 1)


def test_generators_without_their_runs_discriminators_are_refused_before_tensorflow(tmp_path, real_mnist_dir):
    """Generators saved without their runs (no checkpoint, no run.json) have no D to filter with."""
    output = str(tmp_path / "out")
    save_generators(output)
    flags = ["--rejection-candidates", "3", "--snapshot-mixture=false", "--output-dir", output, "--mnist-dir", real_mnist_dir]
    refusals, imported = outcomes_before_tensorflow(["--train-mnist", *flags], ["--export-mnist", str(tmp_path / "x"), *flags])
    assert not imported
    for refusal in refusals:
        assert "digit-0 has no checkpoint and run.json to take its discriminator from" in refusal and "--restart" in refusal, refusal
