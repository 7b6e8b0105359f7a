#!/usr/bin/env python3
"""GAN-stage throughput: whole ten-digit jobs of each back end, side by side.

  .venv/bin/python bench/throughput.py [--rounds 3] [--steps 150]

Each variant trains the ten digits for --steps steps each (batch 32), in a
fresh process of its own, so that every variant sets up its own TensorFlow
thread pools; the time is the whole process (start-up, data, tracing, the
steps, the files it writes). Rounds alternate between the variants so machine
noise hits them alike; the table gives medians of generated images per second (ten
digits x steps x batch x images per pack / seconds) and the ratio to the straightforward port.

  straightforward  the same architecture in float32, one tf.function call per
                   step, batches from tf.data, real and fake shown to D in
                   separate batches (the original's recipe), Keras' own Adam
                   and batch norm; new networks and a new trace per digit,
                   one digit after another.
  sequential       ./main.py --train-digits 0,...,9 --workers 1: mnistgan's
                   step at the default preset's recipe, one run per digit
                   (--precision auto, mixed batches, D judging pairs of
                   images, compiled calls of about a second), one digit
                   after another in one process.
  workers-2        the same with --workers 2: two processes, one thread each.
  stacked-2        two digits' networks in one compiled step in one process
                   (two threads), each digit with its own batch-norm
                   statistics and Adam state, five pairs one after another.
  ray-2            ./main.py --train-digits 0,...,9 --engine ray on a local
                   cluster of this machine (mnistgan.local_cluster): a head
                   with no CPUs and two worker nodes of one CPU each, one task
                   per digit. The cluster starts once before the rounds (its
                   start-up time is printed apart); each job includes the
                   driver's connection and the pre-flight check of the nodes.

Matrix-multiply peaks are measured in the same run; GFLOP/s uses the analytic
FLOP count of a step (multiply-add = 2 FLOPs; backward = 2x forward), and
"of peak" divides it by the peak at the precision the variant trains in
(straightforward: float32; the others: what `--precision auto` chooses on this
machine), so that figures from different processors compare.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app, flags  # noqa: E402

_ROUNDS = flags.DEFINE_integer("rounds", 3, "Alternating measurement rounds.")
_STEPS = flags.DEFINE_integer("steps", 150, "Training steps per digit.")
_VARIANTS = flags.DEFINE_list("variants", ["straightforward", "sequential", "workers-2", "stacked-2"], "Variants to run.")
_RUN = flags.DEFINE_string("run", None, "Internal: run one variant in this process and print its seconds.")
_MNIST_DIR = flags.DEFINE_string("mnist-dir", os.path.join(ROOT, "data", "mnist"), "MNIST folder (set up by make).")
BATCH = 32
DIGITS = tuple(range(10))
# The stacked variant's steps per compiled call (the GAN loop's fixed count before calls were sized by time).
STACKED_STEPS_PER_CALL = 25


# The GAN recipe of the variants that run main.py: the default preset's, one run per digit.
MAIN_FLAGS = ("--preset", "default", "--runs-per-digit", "1", "--coverage-focus", "0", "--snapshots", "0")
MAIN_PACKING = 2  # The default preset's: D judges pairs of images.


def forward_flops(packing=1):
    """Forward FLOPs of the generator per image and of the discriminator per pack of `packing` images."""
    g = 2 * (32 * 1024 + 1024 * 3136 + 14 * 14 * 32 * 25 * 64 + 28 * 28 * 1 * 25 * 32)
    d = 2 * (28 * 28 * packing * 32 * 25 + 14 * 14 * 64 * 25 * 32 + 3136 * 1024 + 1024)
    return g, d


def step_flops(batch, mixed_batches, packing=1):
    """FLOPs of one GAN step: `batch` packs of real and of generated images, `packing` images each."""
    g, d = forward_flops(packing)
    d_step = batch * packing * g + 3 * 2 * batch * d  # G forward; D forward + backward on real and fake.
    g_step = 3 * batch * packing * g + 2 * (2 if mixed_batches else 1) * batch * d  # D backward to its input only.
    return d_step + g_step


def variant_recipe(name):
    """(images D judges as one, precision) of a variant's step."""
    if name == "straightforward":
        return 1, "float32"
    from mnistgan import precision

    policy = precision.machine_choice().policy  # What --precision auto (the default) trains in here.
    return (MAIN_PACKING if name.startswith(("sequential", "workers", "ray")) else 1), policy


def straightforward_digit(images, batch, steps):
    """The plain port for one digit: float32, separate batches, one call per step, tf.data input."""
    import keras
    import tensorflow as tf

    from mnistgan import data, networks

    keras.mixed_precision.set_global_policy("float32")
    generator = networks.build_generator()
    discriminator = networks.build_discriminator(batch_norm=keras.layers.BatchNormalization)
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

    for _ in range(steps):
        loss = step(next(batches))
    float(loss)
    generator.save(os.path.join(tempfile.mkdtemp(), "generator.keras"))


def matmul_peak(dtype, size=2048, repeats=20):
    import tensorflow as tf

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



def stacked_job(mnist, steps, k=2):
    """K digits' networks in one compiled step (no files written); the ten digits as ten/K groups."""
    import tensorflow as tf

    from mnistgan import config as config_lib, data, gan_state, gan_step

    config = config_lib.GanConfig()
    images = {d: data.to_float(data.digit_images(mnist, "train", d)) for d in DIGITS}
    gans = [gan_step.GanStep(gan_state.GanState(config, images[d], seed=d)) for d in DIGITS[:k]]

    @tf.function
    def train_together(count):
        # The digits share no variable, so TensorFlow may run their ops side by side.
        for _ in tf.range(count):
            for digit_gan in gans:
                digit_gan.train_step()

    for first in range(0, len(DIGITS), k):
        for digit_gan, digit in zip(gans, DIGITS[first : first + k]):
            digit_gan.state.reset(images[digit], seed=digit)
        done = 0
        while done < steps:
            count = min(STACKED_STEPS_PER_CALL, steps - done)
            train_together(tf.constant(count, tf.int32))
            done += count
        float(gans[0].state.step.numpy())


def precision_machine():
    """The processor and its bfloat16 flags, as the precision cache names them."""
    from mnistgan import precision

    return precision.machine_key()


def run_variant(name, steps):
    """Runs one variant's whole ten-digit job in this process (the timed child)."""
    from mnistgan import data

    if name.startswith(("sequential", "workers", "ray")):
        output = tempfile.mkdtemp(prefix="throughput-")
        every = str(steps)
        if name.startswith("ray"):  # The cluster's address and token come in the environment (main()).
            engine = ["--engine", "ray", "--address", os.environ["THROUGHPUT_RAY_ADDRESS"]]
        else:
            engine = ["--workers", "1" if name == "sequential" else name.split("-")[1]]
        args = ["--train-digits", ",".join(map(str, DIGITS)), *MAIN_FLAGS, "--steps", every, "--sample-every", every,
                "--checkpoint-every", every, "--eval-every", "0", *engine,
                "--output-dir", output, "--mnist-dir", _MNIST_DIR.value]  # fmt: skip
        subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], check=True, capture_output=True)
        shutil.rmtree(output)
        return
    mnist = data.load(_MNIST_DIR.value, fetchers=())
    if name == "straightforward":
        for digit in DIGITS:
            straightforward_digit(data.digit_images(mnist, "train", digit), BATCH, steps)
    elif name.startswith("stacked"):
        stacked_job(mnist, steps, k=int(name.split("-")[1]))
    elif name == "peaks":
        import tensorflow as tf

        print(json.dumps({"float32": matmul_peak(tf.float32), "bfloat16": matmul_peak(tf.bfloat16)}))
    else:
        raise SystemExit(f"unknown variant {name!r}")


def timed(name, steps, env=None):
    """Wall seconds of a fresh process running variant `name`, and what it printed."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--run", name, "--steps", str(steps), "--mnist-dir", _MNIST_DIR.value],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    return time.perf_counter() - start, result.stdout


def main(argv):
    del argv
    if _RUN.value:
        run_variant(_RUN.value, _STEPS.value)
        return
    seconds = {name: [] for name in _VARIANTS.value}
    cluster, env, start_up = None, None, None
    if any(name.startswith("ray") for name in _VARIANTS.value):
        from mnistgan import local_cluster

        workers = int(next(n for n in _VARIANTS.value if n.startswith("ray")).split("-")[1])
        start = time.perf_counter()
        cluster = local_cluster.LocalCluster(workers=workers, cpus=1)
        start_up = time.perf_counter() - start
        env = dict(cluster.env, THROUGHPUT_RAY_ADDRESS=cluster.address)
    try:
        for round_ in range(_ROUNDS.value):
            for name in _VARIANTS.value:
                seconds[name].append(timed(name, _STEPS.value, env if name.startswith("ray") else None)[0])
                print(f"round {round_ + 1}: {name} {seconds[name][-1]:.1f} s", file=sys.stderr, flush=True)
    finally:
        if cluster:
            cluster.stop()
    peaks = json.loads(timed("peaks", 0)[1].strip().splitlines()[-1])
    base = statistics.median(seconds[_VARIANTS.value[0]])
    print(
        f"\nGAN stage: {len(DIGITS)} digits x {_STEPS.value} steps at batch {BATCH}, whole jobs in fresh processes, "
        f"{_ROUNDS.value} alternating rounds (median):"
    )
    print(
        f"{'variant':<16} | {'seconds':>8} | {'images/s':>8} | {'GFLOP/s':>8} | {'precision':>9} | {'of peak':>7} | "
        f"speed-up vs {_VARIANTS.value[0]}"
    )
    for name, times in seconds.items():
        median = statistics.median(times)
        packing, policy = variant_recipe(name)
        images = len(DIGITS) * _STEPS.value * BATCH * packing  # The generator's images.
        gflops = step_flops(BATCH, name != "straightforward", packing) * len(DIGITS) * _STEPS.value / median / 1e9
        peak = peaks["float32" if policy == "float32" else "bfloat16"]
        print(
            f"{name:<16} | {median:>8.1f} | {images / median:>8.0f} | {gflops:>8.1f} | {policy.replace('mixed_', ''):>9} | "
            f"{gflops / peak:>7.0%} | {base / median:.2f}x   (range {min(times):.1f}-{max(times):.1f} s)"
        )
    if start_up is not None:
        print(f"the local Ray cluster (a head and {len(cluster.ids)} worker nodes of one CPU) started in {start_up:.1f} s")
    print(f"matmul peak (2048x2048, 2 threads): float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bfloat16']:.0f} GFLOP/s")
    print(f"processor: {precision_machine()}")


if __name__ == "__main__":
    app.run(main)
