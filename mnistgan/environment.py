"""The process around the work: the project's Python environment, a quiet start, the device.

main.py calls `enter_project_env` before it imports anything outside the
standard library, so this module imports only the standard library at the top.
"""

import contextlib
import importlib.metadata
import importlib.util
import logging as std_logging
import os
import sys
import tempfile

VENV_DIR = ".venv"
# Set before re-executing, so a Python that is not the environment's after all cannot loop.
REEXEC_GUARD = "MNISTGAN_REEXEC"
# Top-level modules main.py needs; importlib finds them without importing them.
REQUIRED_MODULES = ("absl", "numpy", "PIL", "keras", "tensorflow", "matplotlib")
# Start-up lines TensorFlow's C++ code writes before its log level is read, so
# TF_CPP_MIN_LOG_LEVEL cannot hide them (TensorFlow 2.21). Only
# TF_ENABLE_ONEDNN_OPTS=0 would, by turning oneDNN off, which changes speed and numerics.
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on.",
)
# Library warnings that say nothing a user can act on: Keras' predict retraces for each
# generator and each last partial batch, which is expected here.
HARMLESS_WARNINGS = ("triggered tf.function retracing",)


def venv_python(project_dir):
    """The environment's interpreter beside main.py (POSIX or Windows layout), or None."""
    for relative in (("bin", "python"), ("Scripts", "python.exe")):
        path = os.path.join(project_dir, VENV_DIR, *relative)
        if os.path.exists(path):
            return path
    return None


def _inside(venv):
    return os.path.realpath(sys.prefix) == os.path.realpath(venv)


def enter_project_env(main_file, argv=None):
    """Continues in the project's virtual env, or exits with one line saying how to set it up.

    When this Python is not the environment's and `.venv` exists beside
    `main_file`, the process is replaced by the environment's Python running
    the same command. A Python that already has every required module (its own
    environment, a container) may run without `.venv`.

    Args:
      main_file: path of main.py.
      argv: the command line (default sys.argv).

    Raises:
      SystemExit: status 2 with one line on stderr when a required module is missing.
    """
    argv = sys.argv if argv is None else argv
    project_dir = os.path.dirname(os.path.abspath(main_file))
    venv = os.path.join(project_dir, VENV_DIR)
    python = venv_python(project_dir)
    if python and not _inside(venv) and os.environ.get(REEXEC_GUARD) != python:
        os.environ[REEXEC_GUARD] = python
        try:
            os.execv(python, [python, os.path.abspath(main_file), *argv[1:]])
        except OSError as e:
            _exit_with(f"cannot start {python} ({e.strerror or e}); set the environment up again: make setup")
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    where = os.path.join(os.path.relpath(project_dir), VENV_DIR)
    if python is None:
        _exit_with(f"the project's environment ({where}) is not set up yet; run `make setup` in {project_dir} first")
    _exit_with(f"{', '.join(missing)} missing in {where} (set-up interrupted?); run `make setup` in {project_dir}")


def _exit_with(message):
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---- a quiet start ----


def quiet_tensorflow_env():
    """Sets TensorFlow's C++ log level (warnings and info off); call before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _stderr_without(noise):
    """Captures file descriptor 2 (C++ writes there directly), then replays it without `noise` lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not any(n in line for n in noise)))
            sys.stderr.flush()


def import_tensorflow_quietly():
    """Imports TensorFlow without its start-up banners; every other line it writes is kept.

    Call it before the first module that imports TensorFlow; later calls do nothing.
    """
    if "tensorflow" in sys.modules:
        return
    quiet_tensorflow_env()
    with _stderr_without(STARTUP_NOISE):
        import tensorflow  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel


class _OwnInfoOnly(std_logging.Filter):
    """Passes warnings and errors (but HARMLESS_WARNINGS) from anywhere, info lines only from this project's files.

    Args:
      own: path prefixes of the project's code (not its .venv, which may sit inside the project).
    """

    def __init__(self, own):
        super().__init__()
        self.own = tuple(own)

    def filter(self, record):
        if record.pathname.startswith(self.own):
            return True
        if record.levelno == std_logging.WARNING and any(w in record.getMessage() for w in HARMLESS_WARNINGS):
            return False
        return record.levelno >= std_logging.WARNING


def use_absl_log_format(verbosity):
    """In a process that app.run did not start (a worker): absl's own line format ("I1202 ...") and `verbosity`.

    Without it, Python's default handler would print "INFO:absl:..." beside the parent's lines.
    """
    from absl import flags, logging  # pylint: disable=import-outside-toplevel

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # Else absl warns that logging comes before flag parsing.
    logging.use_absl_handler()
    logging.set_verbosity(verbosity)


# The loggers libraries write through: absl's (TensorFlow's checkpoint writer uses it) and TensorFlow's own.
LIBRARY_LOGGERS = ("absl", "tensorflow")


def quiet_library_logs():
    """Hides the info lines libraries log through absl or Python logging (TensorFlow's
    "Sharding callback duration" at every checkpoint), unless more verbosity was asked for (-v 1).

    The filter sits on the loggers, not a handler, so it holds in worker processes too,
    whatever handler prints there.
    """
    from absl import logging  # pylint: disable=import-outside-toplevel

    if logging.get_verbosity() > logging.INFO:
        return
    package_dir = os.path.dirname(os.path.abspath(__file__))
    project_dir = os.path.dirname(package_dir)
    own = (package_dir + os.sep, os.path.join(project_dir, "main.py"), os.path.join(project_dir, "bench") + os.sep)
    for name in LIBRARY_LOGGERS:
        logger = std_logging.getLogger(name)
        if not any(isinstance(f, _OwnInfoOnly) for f in logger.filters):
            logger.addFilter(_OwnInfoOnly(own))


# ---- the device ----


def _cpu_only_build():
    """Whether the installed TensorFlow is the CPU-only wheel (then no GPU is usable, so no import is needed)."""
    try:
        importlib.metadata.version("tensorflow-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    try:
        importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        return True
    return False


def _read_first_line(path):
    """The first line of a small system file, stripped; None when it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return None


def _cgroup_cpus(root="/sys/fs/cgroup"):
    """The CPUs a cgroup quota allows this process (cgroup v2 cpu.max, or v1's CFS quota); None: no quota."""
    v2 = _read_first_line(os.path.join(root, "cpu.max"))  # "200000 100000", or "max 100000" without a quota.
    quota, period = (v2.split() + [""])[:2] if v2 else (
        _read_first_line(os.path.join(root, "cpu", "cpu.cfs_quota_us")),
        _read_first_line(os.path.join(root, "cpu", "cpu.cfs_period_us")),
    )
    try:
        quota, period = int(quota), int(period)
    except (TypeError, ValueError):
        return None  # "max", absent, or unreadable: no quota.
    return max(1, -(-quota // period)) if quota > 0 and period > 0 else None


def usable_cores(cgroup_root="/sys/fs/cgroup"):
    """The cores this process may run on: its CPU affinity, within a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpus(cgroup_root)
    return min(cores, quota) if quota else cores


def _cgroup_memory_left(root="/sys/fs/cgroup"):
    """Bytes a container's memory limit leaves (cgroup v2 memory.max, or v1's limit); None: no limit."""
    for limit_file, usage_file in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        limit, usage = (_read_first_line(os.path.join(root, name)) for name in (limit_file, usage_file))
        try:
            limit, usage = int(limit), int(usage or 0)
        except (TypeError, ValueError):
            continue  # "max" or absent.
        if limit < 2**60:  # cgroup v1 writes a huge number for "no limit".
            return max(0, limit - usage)
    return None


def available_memory_bytes(meminfo="/proc/meminfo", cgroup_root="/sys/fs/cgroup"):
    """Memory available to new processes without swapping (Linux' MemAvailable, within a container's limit);
    None where it is not known."""
    available = None
    try:
        with open(meminfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    left = _cgroup_memory_left(cgroup_root)
    if left is None or available is None:
        return available if left is None else left
    return min(available, left)


def gpu_present():
    """Whether TensorFlow will likely train on an NVIDIA GPU: a build that can use one, and a driver (read without TensorFlow)."""
    return not _cpu_only_build() and os.path.exists("/proc/driver/nvidia/version")


def training_device():
    """What TensorFlow trains on, e.g. "CPU (2 cores)" or "GPU: NVIDIA A100".

    With the CPU-only build this does not import TensorFlow (a parent process
    that hands digits to workers stays without it).
    """
    if not _cpu_only_build():
        import_tensorflow_quietly()
        import tensorflow as tf  # pylint: disable=import-outside-toplevel

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
            return "GPU: " + ", ".join(names)
    described = f"CPU ({usable_cores()} cores)"
    # An NVIDIA driver without a GPU device in TensorFlow: the CPU-only build is installed.
    if os.path.exists("/proc/driver/nvidia/version"):
        described += "; an NVIDIA GPU is present but unused: set up with `make setup TF=gpu`"
    return described
