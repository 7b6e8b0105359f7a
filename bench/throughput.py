#!/usr/bin/env python3
"""GAN training throughput: a straightforward Keras port vs mnistgan's step, side by side.

  .venv/bin/python bench/throughput.py [--rounds 5] [--steps 100]

"straightforward": the same architecture in float32, one tf.function call per
step, real batches from a tf.data pipeline, real and fake shown to D in
separate batches (the original's recipe). "mnistgan": `gan.DigitGan` with the
default config (bfloat16 compute, mixed batches, steps run in compiled chunks
from resident data). Rounds alternate between the two so machine noise hits
both alike; the table gives medians and the ratio. Matrix-multiply peaks are
measured in the same run, and achieved GFLOP/s uses the analytic FLOP count
of a step (multiply-add = 2 FLOPs; backward = 2x forward).
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from mnistgan import config as config_lib, data, gan, networks  # noqa: E402

_ROUNDS = flags.DEFINE_integer("rounds", 5, "Alternating measurement rounds.")
_STEPS = flags.DEFINE_integer("steps", 100, "Training steps per round and variant.")
_MNIST_DIR = flags.DEFINE_string("mnist-dir", "data/mnist", "MNIST folder (set up by make).")


def forward_flops():
    """Forward FLOPs per image of the generator and the discriminator."""
    g = 2 * (32 * 1024 + 1024 * 3136 + 14 * 14 * 32 * 25 * 64 + 28 * 28 * 1 * 25 * 32)
    d = 2 * (28 * 28 * 32 * 25 + 14 * 14 * 64 * 25 * 32 + 3136 * 1024 + 1024)
    return g, d


def step_flops(batch, mixed_batches):
    g, d = forward_flops()
    d_step = batch * g + 3 * 2 * batch * d  # G forward; D forward + backward on real and fake.
    g_step = 3 * batch * g + 2 * (2 if mixed_batches else 1) * batch * d  # D backward to its input only.
    return d_step + g_step


def straightforward_step(images, batch):
    """The plain port: float32, separate batches, one call per step, tf.data input."""
    keras.mixed_precision.set_global_policy("float32")
    generator, discriminator = networks.build_generator(), networks.build_discriminator()
    g_opt, d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5)
    batches = iter(data.batches(images, batch_size=batch, seed=0))
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def step(real):
        z = tf.random.normal([batch, 32])
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            real_logits, fake_logits = discriminator(real, training=True), discriminator(fake, training=True)
            d_loss = bce(tf.ones_like(real_logits), real_logits) + bce(tf.zeros_like(fake_logits), fake_logits)
        d_opt.apply_gradients(zip(tape.gradient(d_loss, discriminator.trainable_variables), discriminator.trainable_variables))
        with tf.GradientTape() as tape:
            fake_logits = discriminator(generator(tf.random.normal([batch, 32]), training=True), training=True)
            g_loss = bce(tf.ones_like(fake_logits), fake_logits)
        g_opt.apply_gradients(zip(tape.gradient(g_loss, generator.trainable_variables), generator.trainable_variables))
        return d_loss

    def run(steps):
        for _ in range(steps):
            loss = step(next(batches))
        float(loss)

    return run


def project_step(images, config):
    digit_gan = gan.DigitGan(config, data.to_float(images), seed=0)

    def run(steps):
        done = 0
        while done < steps:
            count = min(gan.CHUNK, steps - done)
            float(digit_gan.train_steps(tf.constant(count, tf.int32))[0])
            done += count

    return run


def matmul_peak(dtype, size=2048, repeats=20):
    a = tf.random.normal([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)

    @tf.function
    def many():
        x = a
        for _ in range(repeats):
            x = tf.matmul(x, a) * tf.cast(1e-3, dtype)
        return tf.reduce_sum(tf.cast(x, tf.float32))

    many()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        float(many())
        times.append(time.perf_counter() - start)
    return 2 * size**3 * repeats / min(times) / 1e9


def main(argv):
    del argv
    mnist = data.load(_MNIST_DIR.value, fetchers=())
    images = data.digit_images(mnist, "train", 8)
    config = config_lib.GanConfig()
    variants = {
        "straightforward": (straightforward_step(images, config.batch_size), step_flops(config.batch_size, False)),
        "mnistgan": (project_step(images, config), step_flops(config.batch_size, config.mixed_batches)),
    }
    for run, _ in variants.values():
        run(10)  # Trace and warm up.
    seconds = {name: [] for name in variants}
    for _ in range(_ROUNDS.value):
        for name, (run, _) in variants.items():
            start = time.perf_counter()
            run(_STEPS.value)
            seconds[name].append((time.perf_counter() - start) / _STEPS.value)
    peaks = {"float32": matmul_peak(tf.float32), "bfloat16": matmul_peak(tf.bfloat16)}
    base = statistics.median(seconds["straightforward"])
    print(f"\nGAN training, batch {config.batch_size}, {_ROUNDS.value} alternating rounds of {_STEPS.value} steps (median):")
    print(f"{'variant':<16} | {'ms/step':>8} | {'steps/s':>8} | {'images/s':>8} | {'GFLOP/s':>8} | speed-up")
    for name, (_, flops) in variants.items():
        median = statistics.median(seconds[name])
        spread = f"{min(seconds[name]) * 1000:.1f}-{max(seconds[name]) * 1000:.1f}"
        print(
            f"{name:<16} | {median * 1000:>8.1f} | {1 / median:>8.1f} | {config.batch_size / median:>8.0f} | "
            f"{flops / median / 1e9:>8.1f} | {base / median:.2f}x   (range {spread} ms)"
        )
    print(f"matmul peak (2048x2048): float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")


if __name__ == "__main__":
    app.run(main)
