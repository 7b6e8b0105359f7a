import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

from mnistgan import outputs, precision
from mnistgan.errors import UserError
from tests.conftest import ROOT, blob_images, run_main, tiny_config

AVX2 = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n"
AVX512_BF16 = "model name\t: AMD EPYC 9B14\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512_bf16\n"


def cpuinfo(tmp_path, text):
    path = tmp_path / f"cpuinfo-{abs(hash(text))}"
    path.write_text(text)
    return str(path)


class FakeProbe:
    """Stands for the timing of the convolution: returns `ratio`, counts its calls."""

    def __init__(self, ratio):
        self.ratio, self.calls = ratio, 0

    def __call__(self):
        self.calls += 1
        return self.ratio


def test_bfloat16_is_chosen_only_where_it_is_faster():
    slow = precision.choose(17.9, ())
    assert slow.policy == "float32" and slow.describe() == "float32: bfloat16 is 17.9x slower here"
    native = precision.choose(0.56, ("avx512_bf16",))
    assert native.policy == "mixed_bfloat16" and native.describe() == "bfloat16: native on this CPU (avx512_bf16): 0.56x float32's time"
    assert precision.choose(0.95, ("avx512_bf16",)).policy == "float32"  # At near parity float32, the exact one.


def test_the_machine_is_measured_once_then_read_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache" / "precision.json")
    probe = FakeProbe(4.6)
    avx2 = cpuinfo(tmp_path, AVX2)
    assert precision.machine_choice(probe, cache, avx2).describe() == "float32: bfloat16 is 4.6x slower here"
    assert precision.machine_choice(probe, cache, avx2).policy == "float32" and probe.calls == 1
    other = FakeProbe(0.6)  # Another processor: measured on its own, the first one's verdict kept.
    assert precision.machine_choice(other, cache, cpuinfo(tmp_path, AVX512_BF16)).policy == "mixed_bfloat16" and other.calls == 1
    assert len(json.loads(open(cache).read())) == 2
    open(cache, "w").write("{not json")  # A damaged cache costs one measurement.
    assert precision.machine_choice(probe, cache, avx2).policy == "float32" and probe.calls == 2


def test_the_cache_key_names_the_processor_and_tensorflow(tmp_path):
    key = precision.machine_key(cpuinfo(tmp_path, AVX512_BF16))
    assert "AMD EPYC 9B14" in key and "avx512_bf16" in key and f"tensorflow {precision.tensorflow_version()}" in key
    assert precision.machine_key(cpuinfo(tmp_path, AVX2)) != key


def test_the_real_probe_times_both_precisions_in_a_process_of_its_own():
    """A parent of worker processes measures without importing TensorFlow itself."""
    script = "import sys; from mnistgan import precision; r = precision._measure_apart(); print(0 < r < 1000, 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout.split() == ["True", "False"], result.stderr


def killed_while_measuring():
    os.kill(os.getpid(), signal.SIGKILL)  # What the OOM killer does.


def test_a_probe_that_dies_or_hangs_fails_in_seconds_and_auto_takes_float32(tmp_path):
    with pytest.raises(precision.ProbeFailed, match="exit code -9"):
        precision._measure_apart(measure=killed_while_measuring)
    with pytest.raises(precision.ProbeFailed, match="no result in 0.01 s"):
        precision._measure_apart(timeout_s=0.01, measure=killed_while_measuring)

    def failing():
        raise precision.ProbeFailed("BrokenProcessPool")

    cache = str(tmp_path / "precision.json")
    choice = precision.machine_choice(failing, cache)
    assert choice.policy == "float32" and "the timing of bfloat16 failed" in choice.reason and not os.path.exists(cache)


def test_a_run_keeps_the_precision_it_started_in():
    assert precision.run_policy("auto", None, "float32") == ("float32", None)  # A fresh run: the machine's.
    policy, note = precision.run_policy("auto", {"precision": "mixed_bfloat16"}, "float32")
    assert policy == "mixed_bfloat16" and note == "continues in bfloat16, the precision it started in (auto chooses float32 here)"
    assert precision.run_policy("float32", {"precision": "float32"}, "mixed_bfloat16") == ("float32", None)


def test_an_explicit_other_precision_is_refused_and_auto_resumes_any(tmp_path):
    record = str(tmp_path / "run.json")
    trained = tiny_config(tmp_path, precision="mixed_bfloat16").gan
    outputs.write_json(record, {"config": dataclasses.asdict(trained), "seed": 0, "wall_time_s": 1.0})
    with pytest.raises(UserError, match=r"precision bfloat16 -> float32\); give them their old values"):
        outputs.read_resumable_record(record, dataclasses.replace(trained, precision="float32"), 0, ("precision",))
    assert outputs.read_resumable_record(record, dataclasses.replace(trained, precision="auto"), 0, ("precision",))


def test_a_gan_run_resumed_where_auto_chooses_otherwise_trains_on_in_its_own(tmp_path):
    from mnistgan import gan

    started = dataclasses.replace(tiny_config(tmp_path, steps=2), machine_precision="mixed_bfloat16")
    gan.DigitTraining(started, 3, blob_images(32), blob_images(16, seed=1)).train()
    record_path = os.path.join(outputs.digit_dir(started.output_dir, 3), "run.json")
    assert json.load(open(record_path))["config"]["precision"] == "mixed_bfloat16"
    # The same folder on a machine where bfloat16 is slower: auto would choose float32.
    moved = dataclasses.replace(started, gan=dataclasses.replace(started.gan, steps=4), machine_precision="float32")
    resumed = gan.DigitTraining(moved, 3, blob_images(32), blob_images(16, seed=1))
    assert resumed.gan_config.precision == "mixed_bfloat16" and "continues in bfloat16" in resumed.precision_note
    assert resumed.train().steps == 4
    assert json.load(open(record_path))["config"]["precision"] == "mixed_bfloat16"
    fresh = gan.DigitTraining(dataclasses.replace(moved, digits=(4,)), 4, blob_images(32), blob_images(16, seed=1))
    assert fresh.gan_config.precision == "float32" and fresh.precision_note is None


def test_the_start_line_says_which_precision_runs_and_why(tmp_path, real_mnist_dir):
    cache = tmp_path / "cache"
    cache.mkdir()
    # This machine, as a cached verdict of a machine where bfloat16 is 4.6 times slower.
    (cache / "precision.json").write_text(json.dumps({precision.machine_key(): {"ratio": 4.6}}))
    env = dict(os.environ, MNISTGAN_CACHE_DIR=str(cache))
    output = str(tmp_path / "out")
    args = ["--train-digits", "3", "--preset", "fast", "--steps", "2", "--sample-every", "2", "--checkpoint-every", "2",
            "--eval-every", "0", "--snapshots", "0", "--batch-size", "8", "--generator-width", "0.25",
            "--discriminator-width", "0.25", "--output-dir", output, "--mnist-dir", real_mnist_dir]  # fmt: skip
    result = run_main(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "precision float32: bfloat16 is 4.6x slower here" in result.stderr
    assert json.load(open(os.path.join(output, "digit-3", "run.json")))["config"]["precision"] == "float32"
    refused = run_main(*args[:2], "--precision", "bfloat16", *args[2:], env=env)
    assert refused.returncode == 2 and "precision float32 -> bfloat16" in refused.stderr.strip().splitlines()[-1]
