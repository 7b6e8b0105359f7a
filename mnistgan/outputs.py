"""Run outputs: every path under `output_dir`, atomic writes and run records.

All paths a run writes are built here, so the layout documented in the README
is defined in one place.
"""

import contextlib
import dataclasses
import errno
import importlib.metadata
import json
import logging as std_logging
import os
import platform
import re
import resource
import shutil
import sys
import tempfile
import typing
import zipfile

import numpy as np

from mnistgan import precision
from mnistgan.errors import UserError

DIGIT_DIR = "digit-{digit}"
# A digit's extra independent GAN runs (GanConfig.runs_per_digit) live inside its folder.
RUN_DIR = "run-{run}"
SAMPLE_NAME = "step-{step:06d}.png"


def digit_dir(output_dir, digit, run=1):
    """The folder of run `run` (1-based) of `digit`: output/digit-d/, or output/digit-d/run-r/ for r > 1.

    `digit` may also be a conditional family's name, whose one network for all digits trains in output/<name>/.
    """
    folder = os.path.join(output_dir, digit if isinstance(digit, str) else DIGIT_DIR.format(digit=digit))
    return folder if run == 1 else os.path.join(folder, RUN_DIR.format(run=run))


def clear_digit_dir(output_dir, digit, run=1):
    """Deletes the files of one run of `digit` (for --restart), leaving the digit's other runs alone."""
    folder = digit_dir(output_dir, digit, run)
    if not os.path.isdir(folder):
        return
    own_runs = re.compile(RUN_DIR.format(run=r"\d+") + "$") if run == 1 else None
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if own_runs and own_runs.match(name) and os.path.isdir(path):
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def run_numbers(output_dir, digit):
    """The runs of `digit` that have a folder: 1 (digit-d/) and every r of a digit-d/run-r/, in order."""
    folder = digit_dir(output_dir, digit)
    if not os.path.isdir(folder):
        return []
    pattern = re.compile(RUN_DIR.format(run=r"(\d+)") + "$")
    extra = sorted(int(m.group(1)) for m in map(pattern.match, os.listdir(folder)) if m)
    return [1, *(r for r in extra if r > 1)]


class TrainingFiles(typing.NamedTuple):
    """The files every training folder (a GAN run, a classifier, the evaluator) holds."""

    record: str  # run.json, the run record
    checkpoints: str  # the tf.train.CheckpointManager folder
    logs: str  # TensorBoard's event files
    metrics: str  # metrics.csv
    model: str  # a trained classifier's (or the evaluator's) model.keras


def training_files(folder):
    """The `TrainingFiles` of a training folder."""
    return TrainingFiles(*(os.path.join(folder, name) for name in ("run.json", "checkpoints", "logs", "metrics.csv", "model.keras")))


def lock_path(output_dir, name):
    """The lock file of the work called `name` (e.g. "digit-3", "digit-3-run-2", "classifier-real"; see locks.py)."""
    return os.path.join(output_dir, ".locks", f"{name}.lock")


def manifest_path(output_dir):
    """output/generators.json: what training produced, which every consumer of generators reads."""
    return os.path.join(output_dir, "generators.json")


def generator_path(output_dir, digit, run=1):
    return os.path.join(digit_dir(output_dir, digit, run), "generator.keras")


def snapshot_path(output_dir, digit, step, run=1):
    return os.path.join(digit_dir(output_dir, digit, run), "snapshots", f"step-{step:06d}.keras")


def snapshot_paths(output_dir, digit, run=1):
    """The kept snapshot generators of one run of the digit, oldest first."""
    folder = os.path.join(digit_dir(output_dir, digit, run), "snapshots")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".keras") and not n.startswith(".")) if os.path.isdir(folder) else []
    return [os.path.join(folder, n) for n in names]


def sample_path(output_dir, digit, step, run=1):
    return os.path.join(digit_dir(output_dir, digit, run), "samples", SAMPLE_NAME.format(step=step))


def evolution_path(output_dir, digit, run=1):
    return os.path.join(digit_dir(output_dir, digit, run), "evolution.png")


def evolution_npz_path(output_dir, digit, run=1):
    """The arrays behind the evolution strip (steps and images), kept across resumes."""
    return os.path.join(digit_dir(output_dir, digit, run), "evolution.npz")


def latent_walk_path(output_dir, digit, unit=None):
    """digit-d/latent-walk.png; of a conditional family's network (`unit` its name), <family>/latent-walk-d.png."""
    if isinstance(unit, str):
        return os.path.join(digit_dir(output_dir, unit), f"latent-walk-{digit}.png")
    return os.path.join(digit_dir(output_dir, digit), "latent-walk.png")


def curves_path(output_dir, digit):
    return os.path.join(digit_dir(output_dir, digit), "curves.png")


def digit_metrics_path(output_dir, digit, run=1):
    return training_files(digit_dir(output_dir, digit, run)).metrics


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
    return training_files(folder).model, os.path.join(folder, "evaluator.json")


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


def out_of_space(error, folder):
    """The one-line refusal for a write that failed because the disk is full; None for any other error.

    Args:
      error: what the write raised: an OSError (ENOSPC, EDQUOT), or TensorFlow's
        ResourceExhaustedError from a checkpoint, which says so in its message.
      folder: the folder that was being written, named in the message with the space left there.
    """
    full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    if not full and not any(words in str(error) for words in ("No space left on device", "Disk quota exceeded")):
        return None
    if isinstance(error, OSError) and isinstance(error.filename, str):
        folder = os.path.dirname(error.filename) or folder  # The file that could not be written says where.
    try:
        free = f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free there"
    except OSError:
        free = "its free space unknown"
    return UserError(
        f"the disk of {folder} is full ({free}); free some space, then run the same command again "
        "(training resumes from its last checkpoint)"
    )


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


def damaged(path, reason, remedy):
    """The error for a damaged file: one line naming it, what is wrong and what to do.

    Args:
      path: the file (or checkpoint prefix).
      reason: what is wrong, e.g. the exception the reader raised.
      remedy: what the user can do, e.g. "start digit 3 over: ./main.py --train-digits 3 --restart".
    """
    reason = " ".join(str(reason).split()) or type(reason).__name__
    if len(reason) > 160:
        reason = reason[:157] + "..."
    return UserError(f"{path} is damaged ({reason}); {remedy}")


def check_fields(record, path, remedy, types):
    """Raises `damaged` unless `record` is a dict with each field of `types` of its type.

    Args:
      types: field name -> a type or tuple of types, as `isinstance` takes them.
    """
    if not isinstance(record, dict):
        raise damaged(path, f"a JSON {type(record).__name__} where a record was expected", remedy)
    for name, kind in types.items():
        if not isinstance(record.get(name), kind):
            optional = isinstance(kind, tuple) and NONE in kind
            raise damaged(path, f"field {name!r} is {'not' if optional else 'missing or not'} a {_type_names(kind)}", remedy)
    return record


def _type_names(kind):
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)) if k is not NONE)


NUMBER = (int, float)
# In a type tuple of `check_fields`: the field may be absent (or null), as in records written before it was recorded.
NONE = type(None)
RECORD_FIELDS = {"config": dict, "seed": int, "wall_time_s": NUMBER}


def read_json(path, remedy="delete it or rerun with --restart", types=None):
    """Returns the JSON record (a dict) at `path`, or None when there is no such file.

    Args:
      remedy: what the error message tells the user to do if the file is damaged.
      types: fields the record must have, as for `check_fields`.

    Raises:
      UserError: if the file exists but is not a JSON object with those fields.
    """
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (ValueError, OSError) as e:  # ValueError: bad JSON or bad UTF-8.
        raise damaged(path, e, remedy) from e
    return check_fields(record, path, remedy, types or {})


def read_jsonl(path, remedy, types=None, check=None):
    """The records of a JSON-lines file (empty lines skipped); [] when there is no such file.

    Args:
      check: called as check(record, where, remedy) after `types` are checked, to refuse what types cannot say
        (a matrix of the wrong shape) with `damaged`.

    Raises:
      UserError: naming the file and the first line that is not a record with `types` (or that `check` refuses).
    """
    if not os.path.exists(path):
        return []
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (ValueError, OSError) as e:
        raise damaged(path, e, remedy.format(line="the damaged lines")) from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            record = json.loads(line)
        except ValueError as e:
            raise damaged(where, e, remedy.format(line=f"line {number}")) from e
        records.append(check_fields(record, where, remedy.format(line=f"line {number}"), types or {}))
        if check:
            check(record, where, remedy.format(line=f"line {number}"))
    return records


def read_npz(path, remedy, keys):
    """The arrays `keys` of an .npz file (no pickles), read whole; None when there is no such file.

    Raises:
      UserError: if the file is not a readable .npz holding those arrays.
    """
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    # BadZipFile: truncated or bad CRC; ValueError: not an .npz (numpy then suspects a
    # pickle) or a bad array header; EOFError: empty; KeyError: an array is missing.
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise damaged(path, e, remedy) from e


def check_keras_archive(path, remedy):
    """Refuses a file that is not a zip archive, as every .keras file is, without importing Keras.

    Keras itself says "file not found" for such a file.

    Raises:
      UserError: naming the file and `remedy`.
    """
    if not zipfile.is_zipfile(path):
        raise damaged(path, "not a .keras archive", remedy)


def load_keras_model(path, remedy):
    """A .keras model loaded in Keras' safe mode.

    Raises:
      UserError: if the file is not a readable .keras archive.
    """
    import keras  # Deferred: importing Keras costs seconds.

    check_keras_archive(path, remedy)
    try:
        return keras.models.load_model(path)
    except (ValueError, OSError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise damaged(path, f"{type(e).__name__}: {e}", remedy) from e


def _checkpoint_errors():
    import tensorflow as tf  # Deferred: importing TensorFlow costs seconds.

    # OpError: a bad .index file or a data checksum mismatch; IndexError: a
    # truncated data file; ValueError: a checkpoint state that is not UTF-8 text.
    return (tf.errors.OpError, IndexError, ValueError)


def latest_checkpoint(directory, remedy):
    """The newest checkpoint in a tf.train.CheckpointManager folder, after reading all of it.

    Returns:
      Its prefix (e.g. "output/digit-3/checkpoints/ckpt-500"), or None when the
      folder has no checkpoint state (a fresh run).

    Raises:
      UserError: if the state file or any file of that checkpoint is damaged.
    """
    import tensorflow as tf  # Deferred: importing TensorFlow costs seconds.

    state_file = os.path.join(directory, "checkpoint")
    if not os.path.exists(state_file):
        return None
    # An unparsable state only gets a warning from TensorFlow and would restart the run from step 0.
    logger = std_logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(std_logging.ERROR)
    try:
        state = tf.train.get_checkpoint_state(directory)
    except ValueError as e:
        raise damaged(state_file, e, remedy) from e
    finally:
        logger.setLevel(level)
    if state is None:
        raise damaged(state_file, "not a checkpoint state", remedy)
    prefix = state.model_checkpoint_path
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)  # Reads and checksums every value.
    except _checkpoint_errors() as e:
        raise damaged(prefix, e, remedy) from e
    return prefix


def restore_checkpoint(checkpoint, prefix, remedy):
    """Restores a tf.train.Checkpoint from `prefix`, checked by `latest_checkpoint`.

    Raises:
      UserError: if the files turn out damaged after all.
    """
    try:
        checkpoint.restore(prefix).assert_existing_objects_matched()
    except _checkpoint_errors() as e:
        raise damaged(prefix, e, remedy) from e


def checkpoint_step(prefix):
    """The step a checkpoint prefix "…/ckpt-N" was saved at; 0 for None."""
    return int(prefix.rsplit("-", 1)[1]) if prefix else 0


def read_resumable_record(path, config, seed, resume_keys, values_before_recorded=None, remedy="add --restart to start over"):
    """The run.json a run resumes from, after checking it was made with compatible settings.

    Args:
      path: the run.json.
      config: the new run's config dataclass.
      seed: the new run's seed.
      resume_keys: config fields a checkpoint cannot be resumed under once changed.
      values_before_recorded: for a setting added later, the value that a record lacking it
        ran with; other missing settings count as changed.
      remedy: what to do if the file is damaged.

    Returns:
      The record, or None when there is none (a fresh run).

    Raises:
      UserError: naming each changed setting and suggesting --restart, or
        naming the file if it is damaged.
    """
    record = read_json(path, remedy, RECORD_FIELDS)
    if record is None:
        return None
    # A setting the record lacks comes from an older version, which did not have it.
    old = {**(values_before_recorded or {}), **record.get("config", {})}
    new = dataclasses.asdict(config)
    # A setting left to "auto" (the precision) takes the one the run started with.
    changed = [k for k in resume_keys if new[k] != "auto" and old.get(k, "not recorded") != new[k]]
    if changed or record.get("seed") != seed:
        what = ", ".join(f"{k} {precision.shown(old.get(k, 'not recorded'))} -> {precision.shown(new[k])}" for k in changed)
        what = what or f"seed {record.get('seed')} -> {seed}"
        raise UserError(
            f"{os.path.dirname(path)} was trained with other settings ({what}); give them their old values to resume it, "
            "or add --restart to start over"
        )
    return record


# What results.jsonl lines must hold for the comparison table and the report; those with NONE were recorded later.
RESULT_FIELDS = {
    "data_source": str, "test_accuracy": NUMBER, "per_digit_accuracy": list, "min_digit": int,
    "impressions": int, "wall_time_s": NUMBER, "validation_accuracy": (*NUMBER, NONE), "seed": (int, NONE),
    "real_per_digit": (int, NONE), "run_id": (str, NONE), "command": (str, NONE), "config": (dict, NONE),
    "confusion": (list, NONE),
}  # fmt: skip


def _check_result(record, where, remedy):
    """Refuses a classifier record whose per-digit figures are not of the ten digits: 10 accuracies (None for a
    digit without test images), min_digit in 0-9, a 10x10 confusion of whole image counts >= 0 (rows: true digit)
    where recorded, N >= 0."""
    confusion, accuracies = record.get("confusion"), record["per_digit_accuracy"]
    if len(accuracies) != 10 or not all(isinstance(a, (*NUMBER, NONE)) for a in accuracies) or not 0 <= record["min_digit"] <= 9:
        raise damaged(where, "per_digit_accuracy or min_digit is not of the ten digits", remedy)
    if confusion is not None and not (len(confusion) == 10 and all(_counts(row) for row in confusion)):
        raise damaged(where, "field 'confusion' is not 10x10 image counts", remedy)
    if (record.get("real_per_digit") or 0) < 0:
        raise damaged(where, "field 'real_per_digit' is negative", remedy)


def _counts(row):
    return isinstance(row, list) and len(row) == 10 and all(isinstance(n, int) and n >= 0 for n in row)


def read_results(output_dir):
    """The classifier records of output/results.jsonl, oldest first ([] when there is none).

    Raises:
      UserError: naming the file and line that is not a classifier record.
    """
    remedy = "remove {line} (or the file, which only lists finished classifier runs)"
    return read_jsonl(results_path(output_dir), remedy, RESULT_FIELDS, _check_result)


def evaluator_remedy(output_dir):
    """What to do about a damaged or mismatched evaluator file: delete its folder, so it is trained again."""
    return f"delete {evaluator_dir(output_dir)} to train the evaluator again"


def read_evaluator_record(output_dir):
    """output/evaluator/evaluator.json (accuracies in [0, 1], config, seed, and real_per_digit N >= 0, the
    images per digit it learned from, 0: all, absent before it was recorded), or None before it is trained.

    Read without TensorFlow: the parent of worker processes checks it too (jobs.check_evaluator).

    Raises:
      UserError: naming the file and `evaluator_remedy` when it is damaged.
    """
    path, remedy = evaluator_files(output_dir)[1], evaluator_remedy(output_dir)
    fields = {"test_accuracy": NUMBER, "validation_accuracy": (*NUMBER, NONE), "real_per_digit": (int, NONE), "config": (dict, NONE)}
    record = read_json(path, remedy, fields)
    if record is not None and (record.get("real_per_digit") or 0) < 0:
        raise damaged(path, "field 'real_per_digit' is negative", remedy)
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
      fields: column names; the first is the step ("step"). Empty to only read.
      remedy: what the error message tells the user to do if the file is damaged.
    """

    def __init__(self, path, fields, remedy="delete it (its history is lost) or rerun with --restart"):
        self.path = path
        self.fields = tuple(fields)
        self.step = self.fields[0] if self.fields else "step"
        self.remedy = remedy

    def rows(self):
        """The rows as dicts of the cells' text ("" when empty); [] when there is no file.

        Raises:
          UserError: unless every row has a whole step and a number (or nothing)
            in each column of the header, steps rise, and the file ends with a
            newline (as every write leaves it).
        """
        if not os.path.exists(self.path):
            return []
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except (ValueError, OSError) as e:
            raise damaged(self.path, e, self.remedy) from e
        lines = text.splitlines()
        if not text.endswith("\n") or not lines or lines[0].split(",")[0] != self.step:
            raise damaged(self.path, "no header line" if not lines else "cut off or not this CSV", self.remedy)
        header = lines[0].split(",")
        rows = []
        for number, line in enumerate(lines[1:], 2):
            cells = line.split(",")
            if len(cells) != len(header) or not self._numbers(cells):
                raise damaged(self.path, f"line {number} is not {len(header)} numbers", self.remedy)
            if rows and int(cells[0]) <= int(rows[-1][self.step]):
                raise damaged(self.path, f"line {number} does not follow step {rows[-1][self.step]}", self.remedy)
            rows.append(dict(zip(header, cells)))
        return rows

    @staticmethod
    def _numbers(cells):
        try:
            int(cells[0])
            for cell in cells[1:]:
                if cell:
                    float(cell)
        except ValueError:
            return False
        return True

    def trim(self, step):
        """Keeps only rows up to `step` (the checkpoint a run resumes from), in the columns of `fields`."""
        lines = [",".join(self.fields)]
        lines += [
            ",".join(row.get(k, "") for k in self.fields) for row in self.rows() if int(row[self.step]) <= step
        ]
        write_text(self.path, "\n".join(lines) + "\n")

    def append(self, row):
        """Appends one row (a dict; missing fields stay empty)."""
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        line = ",".join("" if row.get(k) is None else f"{row[k]:.6g}" for k in self.fields)
        write_text(self.path, text + line + "\n")

    def steps(self):
        return [int(row[self.step]) for row in self.rows()]
