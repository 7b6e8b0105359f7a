"""Which arithmetic the networks train in: `--precision auto|float32|bfloat16`.

bfloat16 (Keras' `mixed_bfloat16` policy: bfloat16 arithmetic, float32 weights) is
faster than float32 on CPUs with native bfloat16 (AVX-512 BF16, AMX; a GAN step 1.6
times as fast on a Zen 4 AMD EPYC) and on GPUs of compute capability 8.0 or more. Elsewhere TensorFlow has no fast
bfloat16 kernel for a convolution's backward pass: on an AVX2-only AMD EPYC the
discriminator's 5x5 convolution took 18 times as long as in float32. So `auto` is
a property of the machine, decided by measuring it: the discriminator's widest
convolution, forward and backward, timed in both precisions in a short-lived
process (a few seconds with TensorFlow's start), once per machine; the verdict is cached under the
processor and the TensorFlow version (`cache_path`). CPU flags only name the
reason in the start line.

A run keeps the precision it started in: a config value of "auto" matches any
recorded one when a run resumes (outputs.read_resumable_record), and the run
takes its record's (`run_policy`).

This module imports only the standard library, absl and `environment` at the top, so
that a process that hands work out stays free of TensorFlow.
"""

import dataclasses
import functools
import importlib.metadata
import json
import multiprocessing
import os
import platform
import signal
import sys
import time

from absl import logging

from mnistgan import environment

# What --precision takes, and the Keras dtype policy each stands for.
FLAG_VALUES = ("auto", "float32", "bfloat16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
AUTO = "auto"
# bfloat16 is chosen only when it takes at most this share of float32's time: near parity float32 is
# the safer arithmetic, and a probe's noise must not flip the choice from one machine check to the next.
BFLOAT16_MAX_RATIO = 0.9
# The probed layer: the DCGAN discriminator's 5x5 convolution from 32 to 64 channels at 14x14, batch 64.
PROBE_INPUT = (64, 14, 14, 32)
PROBE_FILTERS, PROBE_KERNEL = 64, 5
PROBE_REPEATS = 5
# The most seconds the measurement may take in its own process (TensorFlow's start included).
PROBE_TIMEOUT_S = 300
# CPU flags that mean native bfloat16 arithmetic (/proc/cpuinfo); a hint for the reason only.
NATIVE_FLAGS = ("amx_bf16", "avx512_bf16")
CACHE_ENV = "MNISTGAN_CACHE_DIR"
CACHE_FILE = "precision.json"


def flag_to_policy(value):
    """--precision's value -> a config's precision ("auto", "float32" or "mixed_bfloat16")."""
    return AUTO if value == AUTO else POLICIES[value]


def shown(policy):
    """How messages name a config's precision: "bfloat16" for "mixed_bfloat16", else the value itself."""
    return {policy_: name for name, policy_ in POLICIES.items()}.get(policy, policy)


@dataclasses.dataclass(frozen=True)
class Choice:
    """What `auto` stands for on this machine.

    Attributes:
      policy: "float32" or "mixed_bfloat16".
      ratio: the probed convolution's bfloat16 time over its float32 time (None: not measured, e.g. a GPU's).
      reason: why, as the start line says it (e.g. "native on this CPU (avx512_bf16): 0.56x float32's time").
    """

    policy: str
    ratio: float | None
    reason: str

    def describe(self):
        """The start line's words, e.g. "float32: bfloat16 is 17.9x slower here"."""
        return f"{shown(self.policy)}: {self.reason}"


def choose(ratio, cpu_flags=()):
    """The `Choice` for a measured bfloat16 / float32 time `ratio` on a CPU with `cpu_flags`."""
    native = [flag for flag in NATIVE_FLAGS if flag in cpu_flags]
    if ratio <= BFLOAT16_MAX_RATIO:
        where = f"native on this CPU ({', '.join(native)})" if native else "faster on this machine"
        return Choice("mixed_bfloat16", ratio, f"{where}: {ratio:.2f}x float32's time")
    if ratio >= 1:
        return Choice("float32", ratio, f"bfloat16 is {ratio:.1f}x slower here")
    return Choice("float32", ratio, f"bfloat16 is only {ratio:.2f}x float32's time here")


# ---- the machine and its cache ----


def cpu_description(cpuinfo="/proc/cpuinfo"):
    """(processor model, bfloat16 flags it has) from `cpuinfo`; ("", ()) where there is no such file."""
    model, flags = "", ()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = tuple(flag for flag in NATIVE_FLAGS if flag in value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def tensorflow_version():
    """The installed TensorFlow's version, read without importing it ("" when none is installed)."""
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def machine_key(cpuinfo="/proc/cpuinfo"):
    """What a cached verdict holds for: the processor, its bfloat16 flags, the cores and TensorFlow's version."""
    model, flags = cpu_description(cpuinfo)
    cores = environment.usable_cores()
    return f"{model} | {' '.join(flags) or 'no bf16 flags'} | {cores} cores | {platform.machine()} | tensorflow {tensorflow_version()}"


def cache_path():
    """Where verdicts are kept: $MNISTGAN_CACHE_DIR, else $XDG_CACHE_HOME/mnistgan, else ~/.cache/mnistgan."""
    folder = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mnistgan"
    )
    return os.path.join(folder, CACHE_FILE)


def _read_cache(path):
    """{machine key: {"ratio": ..., "measured": ...}}; {} when the file is missing or not such a map."""
    try:
        with open(path, encoding="utf-8") as f:
            cache = json.load(f)
    except (OSError, ValueError):
        return {}  # A damaged cache costs one measurement, nothing else: it is rewritten.
    return cache if isinstance(cache, dict) else {}


def _write_cache(path, cache):
    """Writes the cache atomically; a folder that cannot be written only costs a measurement next time."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(cache, f, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except OSError:
        pass


# ---- the measurement ----


def measure_ratio(repeats=PROBE_REPEATS):
    """The probed convolution's forward and backward time in bfloat16 over that in float32, in this process.

    Imports TensorFlow. Each precision is traced and run once before its timed runs; the median of `repeats` counts.
    """
    environment.import_tensorflow_quietly()
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    def median_seconds(policy):
        layer = keras.layers.Conv2D(PROBE_FILTERS, PROBE_KERNEL, padding="same", dtype=policy)
        images = tf.random.stateless_normal(PROBE_INPUT, seed=[0, 0])
        layer.build(PROBE_INPUT)

        @tf.function
        def forward_backward(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(tf.cast(layer(x), tf.float32))
            return tape.gradient(loss, [x, *layer.trainable_variables])

        [g.numpy() for g in forward_backward(images)]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            [g.numpy() for g in forward_backward(images)]
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2]

    return median_seconds("mixed_bfloat16") / median_seconds("float32")


class ProbeFailed(Exception):
    """The measurement's process ended without a result (killed, crashed) or took too long."""


def _measure_here_or_apart():
    """`measure_ratio` here where TensorFlow has started already (its thread pools are set), or where this process
    may not start others (a daemon); else in a process of its own (`_measure_apart`)."""
    if "tensorflow" in sys.modules or multiprocessing.current_process().daemon:
        return measure_ratio()
    return _measure_apart()


def _measure_apart(timeout_s=PROBE_TIMEOUT_S, measure=None):
    """`measure` (default `measure_ratio`; a module-level function) in a fresh process, so that this one stays
    without TensorFlow (a parent of worker processes) and its thread pools unset.

    Raises:
      ProbeFailed: the measuring process ended without a result (killed, crashed) or gave none within `timeout_s`.
    """
    measure = measure or measure_ratio
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_measure_into, args=(sender, measure), name="mnistgan-precision-probe", daemon=True)
    process.start()
    sender.close()  # Only the child writes: its end closing is how a killed child shows (EOFError).
    try:
        if not receiver.poll(timeout_s):
            raise ProbeFailed(f"no result in {timeout_s} s")
        return receiver.recv()
    except EOFError:
        process.join()
        raise ProbeFailed(f"its process ended with exit code {process.exitcode}") from None
    finally:
        if process.is_alive():
            process.terminate()
        process.join()


def _measure_into(sender, measure):
    """The measuring process: sends `measure()`; Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sender.send(measure())


def gpu_choice():
    """The `Choice` on a GPU TensorFlow sees (bfloat16 from compute capability 8.0), or None on a CPU.

    Asks TensorFlow only when the installed build can use a GPU (environment.training_device).
    """
    device = environment.training_device()
    if not device.startswith("GPU"):
        return None
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    gpu = tf.config.list_physical_devices("GPU")[0]
    capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
    if tuple(capability) >= (8, 0):
        return Choice("mixed_bfloat16", None, f"native on this GPU (compute capability {capability[0]}.{capability[1]})")
    return Choice("float32", None, f"no bfloat16 arithmetic on this GPU (compute capability {capability[0]}.{capability[1]})")


def machine_choice(measure=None, path=None, cpuinfo="/proc/cpuinfo"):
    """What `auto` stands for here: measured once per machine, then read from the cache.

    Args:
      measure: returns the bfloat16 / float32 time ratio (default: `measure_ratio`, in a fresh process where this one
        has no TensorFlow yet).
      path: the cache file (default `cache_path()`).
      cpuinfo: where the processor is described.
    """
    if measure is None:
        choice = gpu_choice()
        if choice is not None:
            return choice
        measure = _measure_here_or_apart
    path = path or cache_path()
    key = machine_key(cpuinfo)
    cache = _read_cache(path)
    entry = cache.get(key)
    ratio = entry.get("ratio") if isinstance(entry, dict) else None
    if not isinstance(ratio, (int, float)) or not ratio > 0:
        try:
            ratio = float(measure())
        except ProbeFailed as e:  # Not cached: the next command measures again.
            return Choice("float32", None, f"the timing of bfloat16 failed ({e}); float32 is the safe choice (--precision bfloat16 overrides)")
        cache[key] = {"ratio": round(ratio, 4), "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        _write_cache(path, cache)
    return choose(ratio, cpu_description(cpuinfo)[1])


@functools.lru_cache(maxsize=4)
def _this_machine(path):
    """The machine's `Choice` from the cache at `path`, read (or measured) once per process."""
    return machine_choice(path=path)


def resolve(requested):
    """The `Choice` a config's precision stands for: the machine's for "auto", else the setting itself."""
    if requested == AUTO:
        return _this_machine(cache_path())
    return Choice(requested, None, "set by --precision or the preset")


def decided(config, requested):
    """`config` (a `Config`) knowing what "auto" stands for on this machine, after the start line that says it.

    Call it once per command, after the checks that need no TensorFlow: the first time on a machine it
    measures (a few seconds in a fresh process); the processes the command starts then take the verdict.

    Args:
      requested: the precision of the networks the command trains (config.gan's or config.classifier's).
    """
    choice = resolve(requested)
    logging.info("precision %s", choice.describe())
    return dataclasses.replace(config, machine_precision=choice.policy) if requested == AUTO else config


def run_policy(requested, recorded_config, machine_policy=""):
    """The precision one run trains in, and a line to say when it is not what `auto` chooses here.

    Args:
      requested: the config's precision ("auto", "float32", "mixed_bfloat16").
      recorded_config: the config the run's record holds (None: a fresh run). An explicit setting that
        differs from it is refused before training (outputs.read_resumable_record).
      machine_policy: what "auto" stands for here, as the command decided it (Config.machine_precision);
        "": decided now.

    Returns:
      (policy, note): "float32" or "mixed_bfloat16", and None or a line saying that a resumed run keeps its own.
    """
    if requested != AUTO:
        return requested, None
    chosen = machine_policy or resolve(AUTO).policy
    recorded = (recorded_config or {}).get("precision")
    if recorded in POLICIES.values() and recorded != chosen:
        return recorded, f"continues in {shown(recorded)}, the precision it started in (auto chooses {shown(chosen)} here)"
    return chosen, None
