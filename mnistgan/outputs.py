"""Run outputs: every path under `output_dir`, atomic writes and run records.

All paths a run writes are built here, so the layout documented in the README
is defined in one place.
"""

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import resource
import sys
import tempfile

from mnistgan.errors import UserError

DIGIT_DIR = "digit-{digit}"
SAMPLE_NAME = "step-{step:06d}.png"


def digit_dir(output_dir, digit):
    return os.path.join(output_dir, DIGIT_DIR.format(digit=digit))


def generator_path(output_dir, digit):
    return os.path.join(digit_dir(output_dir, digit), "generator.keras")


def snapshot_path(output_dir, digit, step):
    return os.path.join(digit_dir(output_dir, digit), "snapshots", f"step-{step:06d}.keras")


def snapshot_paths(output_dir, digit):
    """The digit's kept snapshot generators, oldest first."""
    folder = os.path.join(digit_dir(output_dir, digit), "snapshots")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".keras") and not n.startswith(".")) if os.path.isdir(folder) else []
    return [os.path.join(folder, n) for n in names]


def sample_path(output_dir, digit, step):
    return os.path.join(digit_dir(output_dir, digit), "samples", SAMPLE_NAME.format(step=step))


def evolution_path(output_dir, digit):
    return os.path.join(digit_dir(output_dir, digit), "evolution.png")


def latent_walk_path(output_dir, digit):
    return os.path.join(digit_dir(output_dir, digit), "latent-walk.png")


def curves_path(output_dir, digit):
    return os.path.join(digit_dir(output_dir, digit), "curves.png")


def digit_metrics_path(output_dir, digit):
    return os.path.join(digit_dir(output_dir, digit), "metrics.csv")


def latest_sample_path(output_dir, digit):
    """The digit's last sample grid (zero-padded names sort by step), or None."""
    folder = os.path.dirname(sample_path(output_dir, digit, 0))
    if not os.path.isdir(folder):
        return None
    names = sorted(n for n in os.listdir(folder) if n.startswith("step-") and n.endswith(".png"))
    return os.path.join(folder, names[-1]) if names else None


def confusion_path(output_dir, data_source):
    return os.path.join(classifier_dir(output_dir, data_source), "confusion.png")


def report_path(output_dir, extension="md"):
    return os.path.join(output_dir, f"report.{extension}")


def quality_curves_path(output_dir):
    return os.path.join(output_dir, "quality-curves.png")


def classifier_dir(output_dir, data_source):
    return os.path.join(output_dir, f"classifier-{data_source}")


def results_path(output_dir):
    return os.path.join(output_dir, "results.jsonl")


def evaluator_dir(output_dir):
    return os.path.join(output_dir, "evaluator")


def evaluator_files(output_dir):
    """(model.keras, evaluator.json) of the cached evaluator network."""
    folder = evaluator_dir(output_dir)
    return os.path.join(folder, "model.keras"), os.path.join(folder, "evaluator.json")


def check_writable_dir(path):
    """Creates `path` if needed and proves a file can be written in it.

    Raises:
      UserError: naming the folder and the reason, before any work starts.
    """
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UserError(f"output directory {path!r} is not writable: {e.strerror or e}") from e


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it onto `path` on success.

    A kill at any moment leaves either the old file or the new one, never a
    half-written one. The temporary name keeps the extension, because some
    writers (Keras, Pillow) choose the format from it.
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=f".tmp{ext}")
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, record):
    write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_json(path):
    """Returns the parsed JSON at `path`, or None when there is no such file.

    Raises:
      UserError: if the file exists but is not valid JSON.
    """
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, OSError) as e:
        raise UserError(f"{path} is unreadable ({e}); delete it or rerun with --restart") from e


def read_resumable_record(path, config, seed, resume_keys, values_before_recorded=None):
    """The run.json a run resumes from, after checking it was made with compatible settings.

    Args:
      path: the run.json.
      config: the new run's config dataclass.
      seed: the new run's seed.
      resume_keys: config fields a checkpoint cannot be resumed under once changed.
      values_before_recorded: for a setting added later, the value that a record lacking it
        ran with; other missing settings count as changed.

    Returns:
      The record, or None when there is none (a fresh run).

    Raises:
      UserError: naming each changed setting and suggesting --restart.
    """
    record = read_json(path)
    if record is None:
        return None
    # A setting the record lacks comes from an older version, which did not have it.
    old = {**(values_before_recorded or {}), **record.get("config", {})}
    new = dataclasses.asdict(config)
    changed = [k for k in resume_keys if old.get(k, "not recorded") != new[k]]
    if changed or record.get("seed") != seed:
        what = ", ".join(f"{k} {old.get(k, 'not recorded')} -> {new[k]}" for k in changed)
        what = what or f"seed {record.get('seed')} -> {seed}"
        raise UserError(f"{os.path.dirname(path)} was trained with other settings ({what}); add --restart to start over")
    return record


def append_jsonl(path, record):
    """Appends one JSON line, rewriting the file atomically."""
    old = b""
    if os.path.exists(path):
        with open(path, "rb") as f:
            old = f.read()
        if old and not old.endswith(b"\n"):
            old += b"\n"
    write_bytes(path, old + (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))


def peak_memory_mb():
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def library_versions():
    names = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pillow", "absl-py")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


class MetricsCsv:
    """A CSV of scalars by step that survives resumes without duplicate rows.

    Args:
      path: the CSV file.
      fields: column names; the first is the step.
    """

    def __init__(self, path, fields):
        self.path = path
        self.fields = tuple(fields)

    def trim(self, step):
        """Keeps only rows up to `step` (the checkpoint a run resumes from)."""
        lines = [",".join(self.fields)]
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                lines += [line for line in f.read().splitlines()[1:] if line and int(line.split(",")[0]) <= step]
        write_text(self.path, "\n".join(lines) + "\n")

    def append(self, row):
        """Appends one row (a dict; missing fields stay empty)."""
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        line = ",".join("" if row.get(k) is None else f"{row[k]:.6g}" for k in self.fields)
        write_text(self.path, text + line + "\n")

    def steps(self):
        with open(self.path, encoding="utf-8") as f:
            return [int(line.split(",")[0]) for line in f.read().splitlines()[1:] if line]
