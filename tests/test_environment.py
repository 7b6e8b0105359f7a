"""./main.py as typed: it continues in the project's environment, and starts quietly."""

import os
import shutil
import subprocess
import sys

import pytest

from mnistgan import environment
from tests.conftest import MAIN, ROOT


def system_python():
    """The Python the project's environment was made from (not the environment's own)."""
    venv = os.path.join(ROOT, environment.VENV_DIR)
    base = getattr(sys, "_base_executable", None)
    if not base or not os.path.exists(base) or os.path.abspath(base).startswith(os.path.abspath(venv) + os.sep):
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as f:
            home = dict(line.split(" = ", 1) for line in f.read().splitlines() if " = " in line)["home"]
        base = os.path.join(home, "python3")
    if not os.path.exists(base):
        pytest.skip("no Python outside the project's environment found")
    return base


def run_with(python, main, *args, env=None, python_flags=()):
    env = {k: v for k, v in (env or os.environ).items() if k != environment.REEXEC_GUARD}
    return subprocess.run([python, *python_flags, main, *args], capture_output=True, text=True, env=env, timeout=120)


def project_copy(tmp_path, venv_python_script=None):
    """main.py and the package in a folder of their own, with a fake .venv/bin/python when given."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(MAIN, tmp_path / "main.py")
    shutil.copytree(os.path.join(ROOT, "mnistgan"), tmp_path / "mnistgan", ignore=shutil.ignore_patterns("__pycache__"))
    if venv_python_script is not None:
        (tmp_path / ".venv" / "bin").mkdir(parents=True)
        python = tmp_path / ".venv" / "bin" / "python"
        python.write_text(venv_python_script)
        python.chmod(0o755)
    return str(tmp_path / "main.py")


def test_help_with_the_system_python_continues_in_the_environment():
    python = system_python()
    result = run_with(python, MAIN, "--help")
    assert result.stderr == ""  # absl ends --help with status 1 after the usage.
    assert "--export-mnist" in result.stdout and "--train-digits" in result.stdout


def test_reexec_passes_the_command_on_and_never_loops(tmp_path):
    python = system_python()
    calls = tmp_path / "calls"
    # A "venv Python" that records its arguments, then runs the system Python again:
    # the guard must stop a second re-exec (-S: a Python without the packages).
    script = f'#!/bin/sh\necho "$*" >> {calls}\nexec {python} -S "$@"\n'
    main = project_copy(tmp_path / "project", script)
    result = run_with(python, main, "--evaluate", "--seed", "3", python_flags=["-S"])
    assert calls.read_text().splitlines() == [f"{main} --evaluate --seed 3"]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "missing in" in result.stderr and "make setup" in result.stderr


def test_without_the_environment_one_line_says_how_to_set_it_up(tmp_path):
    main = project_copy(tmp_path)  # No .venv beside it.
    # -S: no site-packages, so this Python lacks absl and TensorFlow whatever this machine has installed.
    result = run_with(system_python(), main, "--help", python_flags=["-S"])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("main.py: error: ") and "not set up yet" in lines[0] and "make setup" in lines[0]


def test_make_selects_the_tensorflow_build():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")

    # Without the variables of a `make test TF=...` this suite may run under.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TF")}

    def dry_run(*args):
        command = ["make", "-n", "-B", "setup", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)

    assert "-r requirements.txt" in dry_run().stdout
    gpu = dry_run("TF=gpu").stdout
    assert "-r requirements-gpu.txt" in gpu and "-r requirements.txt" not in gpu
    with open(os.path.join(ROOT, "requirements-gpu.txt"), encoding="utf-8") as f:
        assert "tensorflow[and-cuda]==2.21.0" in f.read()
    refused = dry_run("TF=tpu")
    assert refused.returncode != 0 and "TF=tpu" in refused.stderr


def test_log_filter_keeps_our_lines_and_warnings_but_not_library_info(tmp_path):
    import logging

    own = str(tmp_path / "mnistgan") + os.sep
    keep = environment._OwnInfoOnly([own])  # pylint: disable=protected-access

    def record(level, path, message):
        return logging.LogRecord("x", level, path, 1, message, None, None)

    assert keep.filter(record(logging.INFO, own + "gan.py", "digit 3: resuming from step 500"))
    assert not keep.filter(record(logging.INFO, "/venv/tensorflow/functional_saver.py", "Sharding callback duration: 13"))
    assert keep.filter(record(logging.WARNING, "/venv/keras/trainer.py", "something a user should read"))
    assert not keep.filter(record(logging.WARNING, "/venv/tensorflow/polymorphic.py", "5 calls triggered tf.function retracing"))
    assert keep.filter(record(logging.ERROR, "/venv/tensorflow/x.py", "triggered tf.function retracing"))


def cgroup(tmp_path, files):
    for name, text in files.items():
        path = tmp_path / "cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return str(tmp_path / "cgroup")


@pytest.mark.parametrize(
    "files, cpus, memory_left",
    [
        ({"cpu.max": "200000 100000", "memory.max": "4294967296", "memory.current": "1073741824"}, 2, 3 * 2**30),  # v2
        ({"cpu.max": "max 100000", "memory.max": "max"}, None, None),  # v2 without limits
        ({"cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000",
          "memory/memory.limit_in_bytes": "2147483648", "memory/memory.usage_in_bytes": "0"}, 2, 2**31),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000",
          "memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "5"}, None, None),  # v1, none
        ({}, None, None),  # no cgroup files
    ],
)  # fmt: skip
def test_a_containers_cpu_quota_and_memory_limit_bound_the_workers(tmp_path, files, cpus, memory_left):
    root = cgroup(tmp_path, files)
    assert environment._cgroup_cpus(root) == cpus and environment._cgroup_memory_left(root) == memory_left
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:   16000000 kB\n")
    expected = 16_000_000 * 1024 if memory_left is None else min(memory_left, 16_000_000 * 1024)
    assert environment.available_memory_bytes(str(meminfo), root) == expected
    assert environment.usable_cores(root) == min(len(os.sched_getaffinity(0)), cpus or 10**6)
