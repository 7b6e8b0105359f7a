"""The one contract between training and everything that uses its generators.

Training writes `output/generators.json`, a manifest that lists for each digit
the generator it kept (`generator`) and the snapshots of every run
(`snapshots`), each with its path relative to the output folder, its run and
run id, and, for a conditional model, the label to feed it. The classifier's
stream, `--evaluate` and `--export-mnist` ask this module for `Sampler`s and
never look for files themselves. A folder trained before the manifest existed
gets one derived from its files (`derive_manifest`).

A `Sampler` is a loaded generator plus what to feed it: noise of its latent
size scaled by `noise_scale`, and for a conditional model the label. Every
sampler returns float32 images (n, 28, 28, 1) in [0, 1].

Only `Sampler` methods and `load_sampler` import Keras and TensorFlow, so the
parent of worker processes can write the manifest without them.
"""

import dataclasses
import os
import re

import numpy as np
from absl import logging

from mnistgan import config as config_lib, data, locks, outputs
from mnistgan.errors import UserError

MANIFEST_VERSION = 1
IMAGE_SHAPE = (28, 28, 1)
ALL_DIGITS = tuple(range(10))


class MissingGenerators(UserError):
    """Digits that training has not (yet) given what a consumer asks for."""


def retrain_digit(digit, family_digits=ALL_DIGITS):
    """What to do about a damaged or missing file of `digit`'s runs; `digit` may be a conditional family's
    name (config.CONDITIONAL_FAMILIES), whose one network for `family_digits` is started over."""
    if isinstance(digit, str):
        digits = ",".join(map(str, family_digits))
        return f"start the {digit} network over: ./main.py --train-digits {digits} --family {digit} --restart"
    return f"start digit {digit} over: ./main.py --train-digits {digit} --restart"


def top_folder(entry):
    """The first folder of a manifest entry's path: digit-d, or a conditional network's output/<family>."""
    return entry.path.replace(os.sep, "/").split("/")[0]


def retrain_entry(entry, digit):
    """What to do about a damaged or missing file of a manifest entry: `retrain_digit` of the conditional
    family whose folder holds it, else of `digit`."""
    family = top_folder(entry)
    return retrain_digit(family if entry.label is not None and family in config_lib.CONDITIONAL_FAMILIES else digit)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One saved generator as the manifest lists it.

    Attributes:
      path: the .keras file, relative to the output folder.
      run: which of the digit's independent runs made it (1-based).
      run_id: that run's id from its run.json (None when unknown).
      label: the class a conditional generator is fed (None: an unconditional one).
    """

    path: str
    run: int = 1
    run_id: str | None = None
    label: int | None = None

    def as_dict(self):
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None or k == "run_id"}


@dataclasses.dataclass(frozen=True)
class DigitGenerators:
    """What training produced for one digit: the generator it kept and the snapshots of every run."""

    generator: Entry | None
    snapshots: tuple = ()


# ---- the manifest ----


def _manifest_remedy(output_dir):
    return f"delete it (it is rebuilt from the files in {output_dir}) or train the digits again"


def _entry(value, where, remedy):
    """An `Entry` from its JSON form; raises `outputs.damaged` unless every field is valid."""
    record = outputs.check_fields(value, where, remedy, {"path": str, "run": int})
    run_id, label = record.get("run_id"), record.get("label")
    if record["run"] < 1 or not (run_id is None or isinstance(run_id, str)):
        raise outputs.damaged(where, "run must be 1 or more and run_id a string or null", remedy)
    if not (label is None or (isinstance(label, int) and not isinstance(label, bool) and 0 <= label <= 9)):
        raise outputs.damaged(where, f"label {label!r} is not a digit 0-9", remedy)
    return Entry(record["path"], record["run"], run_id, label)


def check_inside(output_dir, relative, where):
    """The absolute path of `relative`, refused unless it is a relative path that stays inside `output_dir`.

    A folder someone hands over must not make the tool load files from elsewhere.

    Raises:
      UserError: naming `where` and the path.
    """
    if os.path.isabs(relative) or not relative.strip() or "\0" in relative:
        raise UserError(f"{where}: path {relative!r} is not relative to the output folder; refusing to load it")
    root = os.path.realpath(output_dir)
    path = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, path]) != root:
        raise UserError(f"{where}: path {relative!r} leaves the output folder {output_dir}; refusing to load it")
    return os.path.join(output_dir, relative)


def read_manifest(output_dir):
    """{digit: DigitGenerators} from output/generators.json; None when there is no such file.

    Raises:
      UserError: one line naming the file (or entry) that is damaged, or a path
        that is absolute or leaves the output folder.
    """
    path = outputs.manifest_path(output_dir)
    remedy = _manifest_remedy(output_dir)
    record = outputs.read_json(path, remedy, {"version": int, "digits": dict})
    if record is None:
        return None
    if record["version"] != MANIFEST_VERSION:
        raise outputs.damaged(path, f"version {record['version']} (this mnistgan reads {MANIFEST_VERSION})", remedy)
    manifest = {}
    for key, value in record["digits"].items():
        where = f"{path} digit {key!r}"
        if not re.fullmatch(r"[0-9]", key):
            raise outputs.damaged(path, f"{key!r} is not a digit 0-9", remedy)
        value = outputs.check_fields(value, where, remedy, {"snapshots": list})
        generator = None if value.get("generator") is None else _entry(value["generator"], where, remedy)
        snapshots = tuple(_entry(item, where, remedy) for item in value["snapshots"])
        for entry in (generator, *snapshots):
            if entry is not None:
                check_inside(output_dir, entry.path, where)
                if entry.label not in (None, int(key)):  # A conditional model draws the digit it is listed under.
                    raise outputs.damaged(where, f"label {entry.label} under digit {key}", remedy)
        manifest[int(key)] = DigitGenerators(generator, snapshots)
    return manifest


def write_manifest(output_dir, manifest):
    """Writes {digit: DigitGenerators} as output/generators.json, atomically."""
    digits = {
        str(digit): {
            "generator": None if entry.generator is None else entry.generator.as_dict(),
            "snapshots": [s.as_dict() for s in entry.snapshots],
        }
        for digit, entry in sorted(manifest.items())
    }
    outputs.write_json(outputs.manifest_path(output_dir), {"version": MANIFEST_VERSION, "digits": digits})


def _run_record(output_dir, digit, run):
    path = outputs.training_files(outputs.digit_dir(output_dir, digit, run)).record
    return outputs.read_json(path, retrain_digit(digit)) or {}


def run_status(output_dir, digit, run):
    """The status a run's run.json gives ("running", "done", "failed"), or None before it has one."""
    return _run_record(output_dir, digit, run).get("status")


_warned = set()


def _warn_once(output_dir, message):
    """Logs `message` about `output_dir` once per process: a command derives a folder's manifest several times."""
    key = (os.path.realpath(output_dir), message)
    if key not in _warned:
        _warned.add(key)
        logging.warning("%s", message)


def derive_manifest(output_dir):
    """{digit: DigitGenerators} read from the folder's files, for a folder trained before the manifest existed.

    A digit counts when digit-N/generator.keras exists; its snapshots are those
    of run 1 and of every digit-N/run-r/ folder whose run.json says it finished,
    in run order (an unfinished run is left out, with a warning).
    """
    manifest = {}
    for digit in ALL_DIGITS:
        kept = outputs.generator_path(output_dir, digit)
        if not os.path.exists(kept):
            continue
        snapshots, ids = [], {}
        for run in outputs.run_numbers(output_dir, digit):
            record = _run_record(output_dir, digit, run)
            ids[run] = record.get("run_id")
            if run > 1 and record.get("status") != "done":
                _warn_once(output_dir, f"digit {digit}: run {run} has not finished ({record.get('status', 'no run.json')}); its snapshots are not used")
                continue
            snapshots += [Entry(os.path.relpath(p, output_dir), run, ids[run]) for p in outputs.snapshot_paths(output_dir, digit, run)]
        manifest[digit] = DigitGenerators(Entry(os.path.relpath(kept, output_dir), 1, ids.get(1)), tuple(snapshots))
    return manifest


def load_manifest(output_dir):
    """The folder's manifest: output/generators.json, or derived from its files when there is none."""
    manifest = read_manifest(output_dir)
    return derive_manifest(output_dir) if manifest is None else manifest


def prepare_training(config):
    """Before a `--train-digits` command trains (with its locks held): reads the manifest (a damaged
    one is refused before any work) and, with --restart, drops the digits it starts over, so no
    consumer draws from a run while it is trained anew or after it was cut short."""
    manifest = load_manifest(config.output_dir)
    if config.restart and any(d in manifest for d in config.digits):
        with locks.waiting(config.output_dir, "generators-json"):
            manifest = load_manifest(config.output_dir)
            write_manifest(config.output_dir, {d: e for d, e in manifest.items() if d not in config.digits})


def record_training(output_dir, results):
    """Puts what training returned into output/generators.json, one command at a time (see `_record_training`)."""
    with locks.waiting(output_dir, "generators-json"):
        _record_training(output_dir, results)


def _record_training(output_dir, results):
    """Puts what training returned into output/generators.json (the process that started the runs calls it).

    Each digit in `results` gets the entries of exactly these runs: its kept
    generator is run 1's, its snapshots those of every run in run order. Other
    digits keep what the manifest (or, before there was one, the folder) listed.

    A conditional family's result (its `digit` a name) gives every digit it draws
    (`labels`) the same files, each entry with that digit as its label.

    Args:
      results: `results.DigitResult`s, each with its `generator` and `snapshots` paths.
    """
    manifest = load_manifest(output_dir)
    by_digit = {}
    for result in sorted(results, key=lambda r: r.run):
        for digit, label in [(d, d) for d in result.labels] if isinstance(result.digit, str) else [(result.digit, None)]:
            by_digit.setdefault(digit, []).append((result, label))

    def entry(path, result, label):
        return Entry(os.path.relpath(path, output_dir), result.run, result.run_id, label)

    for digit, runs in sorted(by_digit.items()):
        first = next(((r, label) for r, label in runs if r.run == 1 and r.generator), None)
        generator = entry(first[0].generator, *first) if first else None
        snapshots = tuple(entry(path, r, label) for r, label in runs for path in r.snapshots)
        manifest[digit] = DigitGenerators(generator, snapshots)
    write_manifest(output_dir, manifest)


def run_folder(output_dir, entry):
    """The folder, relative to `output_dir`, of the run that saved `entry`: the nearest one above its file
    that holds a run.json (digit-d/, digit-d/run-r/, <family>/); None when there is none."""
    folder = os.path.dirname(entry.path)
    while folder and not os.path.exists(outputs.training_files(os.path.join(output_dir, folder)).record):
        folder = os.path.dirname(folder)
    return folder or None


def kept_unit(output_dir, digit, manifest=None):
    """What trained the digit's kept generator: the digit itself, or the name of the conditional family's
    network that draws it (its folder, outputs.digit_dir)."""
    entry = (manifest or load_manifest(output_dir)).get(digit)
    if entry is None or entry.generator is None or entry.generator.label is None:
        return digit
    return top_folder(entry.generator)


def training_records(output_dir, digits=ALL_DIGITS):
    """The run.json of every GAN run behind the digits' manifest entries, each once, in path order.

    A run's folder is the nearest folder above an entry's file that holds a
    run.json (digit-d/, digit-d/run-r/, or a conditional family's <family>/, whose
    one run serves every digit). A run whose record is gone is left out.

    Raises:
      UserError: naming a run.json that is not a record, or whose config or real_per_digit is of another type.
    """
    manifest = load_manifest(output_dir)
    folders = set()
    for digit in digits:
        entry = manifest.get(digit)
        for item in ([entry.generator, *entry.snapshots] if entry else []):
            folder = None if item is None else run_folder(output_dir, item)
            if folder:
                folders.add(folder)
    records = []
    for folder in sorted(folders):
        path = outputs.training_files(os.path.join(output_dir, folder)).record
        remedy = f"delete {os.path.join(output_dir, folder)} and train it again"
        records.append(outputs.read_json(path, remedy, {"config": (dict, outputs.NONE)}) or {})
        # The images per digit it learned from decide which classifiers may draw from it (check_real_per_digit).
        outputs.check_fields(records[-1].get("config") or {}, f"{path} config", remedy, {"real_per_digit": (int, outputs.NONE)})
    return records


def check_real_per_digit(output_dir, real_per_digit, digits=ALL_DIGITS):
    """Refuses a classifier that would learn from other real images than its generators did.

    A classifier given the first N real images of each digit (`--real-per-digit`) draws only from GANs
    trained on the same N (their run.json's config; 0 before it was recorded): what those GANs learned,
    and what they cost, belong to that row of the comparison, and GANs of the whole data set would carry
    knowledge of images the classifier may not see.

    Raises:
      UserError: one line naming the --real-per-digit the generators were trained with, or a run.json whose
        real_per_digit is not a whole number.
    """
    trained = sorted({(record.get("config") or {}).get("real_per_digit") or 0 for record in training_records(output_dir, digits)})
    if not trained or trained == [real_per_digit]:
        return
    if len(trained) > 1:
        listed = ", ".join(map(str, trained))
        raise UserError(f"the generators in {output_dir} learned from different real images (--real-per-digit {listed}); train them again with one")
    raise UserError(
        f"the generators in {output_dir} learned from {data.real_images_text(trained[0])} and this classifier would "
        f"learn from {data.real_images_text(real_per_digit)}: give --real-per-digit {trained[0]}, or train generators "
        f"with --real-per-digit {real_per_digit} into another --output-dir"
    )


def trained_digits(output_dir):
    """The digits the manifest lists with a kept generator, in order."""
    return [d for d, entry in sorted(load_manifest(output_dir).items()) if entry.generator is not None]


def measured_digits(output_dir, digits=()):
    """The digits `--evaluate` measures: `digits`, or else every one with a kept generator (`trained_digits`).

    Raises:
      UserError: when `digits` is empty and no digit is trained.
    """
    digits = list(digits) or trained_digits(output_dir)
    if not digits:
        raise UserError(f"no trained generators in {output_dir}; train them first: ./main.py --train-digits 0,1,2,3,4,5,6,7,8,9")
    return digits


# ---- samplers ----


class Sampler:
    """A generator and what to feed it.

    Args:
      model: a Keras model: noise float32 (n, latent) -> images (n, 28, 28, 1)
        in [0, 1]; a conditional one takes [noise, int32 labels (n,)].
      entry: where it came from (None for a model in memory); its `label`, if
        any, is fed to a conditional model.
      noise_scale: the standard deviation of the noise it is fed.
    """

    def __init__(self, model, entry=None, noise_scale=1.0):
        # Plain attributes, no properties: the classifier's stream reads them inside a tf.function.
        self.model, self.entry, self.noise_scale = model, entry, noise_scale
        self.label = None if entry is None else entry.label
        self.latent_dim = int(model.inputs[0].shape[-1])

    def __call__(self, noise):
        """Images for noise ~ N(0, 1), float32 tensor (n, latent_dim), inside a tf.function or eagerly.

        Returns:
          float32 tensor (n, 28, 28, 1) in [0, 1].
        """
        import tensorflow as tf  # Deferred: the manifest's writers must not import it.

        z = self.noise_scale * noise
        inputs = z if self.label is None else [z, tf.fill(tf.shape(z)[:1], tf.constant(self.label, tf.int32))]
        return tf.cast(self.model(inputs, training=False), tf.float32)

    def sample(self, rng, count):
        """`count` images from fresh noise of `rng`, a tf.random.Generator; in a tf.function or eagerly: (count, 28, 28, 1)."""
        return self(rng.normal([count, self.latent_dim]))

    def images_for(self, noise):
        """float32 numpy (n, 28, 28, 1) in [0, 1] for float32 noise (n, latent_dim) ~ N(0, 1), in batches of 500."""
        noise = (self.noise_scale * np.asarray(noise, np.float32)).astype(np.float32)
        inputs = noise if self.label is None else [noise, np.full((len(noise),), self.label, np.int32)]
        return np.asarray(self.model.predict(inputs, batch_size=500, verbose=0), np.float32)

    def draw(self, count, seed):
        """`count` images from fresh noise seeded by `seed`: float32 (count, 28, 28, 1) in [0, 1]."""
        noise = np.random.default_rng(seed).standard_normal((count, self.latent_dim)).astype(np.float32)
        return self.images_for(noise)

    def describe(self):
        """What a record notes about this sampler (path, run, run id, label, noise scale)."""
        return {**(self.entry.as_dict() if self.entry else {}), "noise_scale": self.noise_scale}


def draw_mixture(samplers, count, seed):
    """`count` images from several samplers in equal shares, shuffled: float32 (count, 28, 28, 1) in [0, 1].

    Shuffled, so that any prefix (precision and recall use the first 2,000) is a fair draw of the mixture too.
    """
    shares = [len(share) for share in np.array_split(np.arange(count), len(samplers))]
    parts = [s.draw(n, seed=[seed, 0, i]) for i, (s, n) in enumerate(zip(samplers, shares))]
    return np.concatenate(parts)[np.random.default_rng([seed, 1]).permutation(count)]


def _check_run_id(output_dir, entry, digit):
    """Refuses an entry of a digit's run whose run.json names another run id: it was trained again since."""
    folder = os.path.relpath(outputs.digit_dir(output_dir, digit, entry.run), output_dir)
    if entry.run_id is None or not entry.path.startswith(folder + os.sep):
        return  # Unknown, or not in a digit's run folder (a conditional model).
    current = _run_record(output_dir, digit, entry.run).get("run_id")
    if current != entry.run_id:
        raise UserError(
            f"{os.path.join(output_dir, entry.path)} belongs to run {entry.run_id} in {outputs.manifest_path(output_dir)}, "
            f"but that run was started again since (run id {current}); finish it: ./main.py --train-digits {digit}"
        )


def locate(output_dir, entry, digit):
    """The path of one manifest entry's generator, checked without loading it (no TensorFlow).

    Raises:
      UserError: a path that leaves the output folder, a missing file, a file of a
        run that was started again since, or one that is not a .keras archive.
    """
    path = check_inside(output_dir, entry.path, outputs.manifest_path(output_dir))
    if not os.path.exists(path):
        raise UserError(f"{path} is missing (listed in {outputs.manifest_path(output_dir)}); {retrain_entry(entry, digit)}")
    _check_run_id(output_dir, entry, digit)
    outputs.check_keras_archive(path, retrain_entry(entry, digit))
    return path


def load_sampler(output_dir, entry, digit, noise_scale=1.0):
    """The `Sampler` of one manifest entry, its model loaded in Keras' safe mode.

    Raises:
      UserError: a missing or unreadable file, or a model that is not a digit generator.
    """
    path = locate(output_dir, entry, digit)
    model = outputs.load_keras_model(path, retrain_entry(entry, digit))
    inputs = len(model.inputs)
    if inputs != (1 if entry.label is None else 2) or len(model.inputs[0].shape) != 2 or tuple(model.output_shape[1:]) != IMAGE_SHAPE:
        kind = "an unconditional" if entry.label is None else "a conditional"
        raise UserError(f"{path} is not {kind} digit generator (inputs {[tuple(i.shape) for i in model.inputs]}, output {model.output_shape})")
    return Sampler(model, entry, noise_scale)


def finished_run_samplers(output_dir, digit, runs):
    """The `Sampler`s of finished runs of `digit`, read from their folders: each run's snapshots, else its generator.

    Training writes generators.json only when its command ends; a run that builds
    on the runs before it (coverage.py) reads them here while the command still trains.

    Raises:
      UserError: a run that has not finished or kept no generator, or an unreadable file.
    """
    samplers = []
    for run in runs:
        record = _run_record(output_dir, digit, run)
        if record.get("status") != "done":
            raise UserError(f"digit {digit}: run {run} has not finished ({record.get('status', 'no run.json')}); train it first")
        paths = outputs.snapshot_paths(output_dir, digit, run) or [outputs.generator_path(output_dir, digit, run)]
        for path in paths:
            samplers.append(load_sampler(output_dir, Entry(os.path.relpath(path, output_dir), run, record.get("run_id")), digit))
    return samplers


def _missing(output_dir, digits, what, remedy):
    listed = ",".join(map(str, digits))
    return MissingGenerators(f"no {what} for digit(s) {listed} in {output_dir}; {remedy.format(listed=listed)}")


def kept_entries(output_dir, digits=ALL_DIGITS, manifest=None):
    """The `Entry` of each digit's kept generator, in `digits` order, every file checked (`locate`).

    Raises:
      UserError: naming every digit without one and the command that trains it, or the first damaged file.
    """
    manifest = load_manifest(output_dir) if manifest is None else manifest
    missing = [d for d in digits if d not in manifest or manifest[d].generator is None]
    if missing:
        raise _missing(output_dir, missing, "generator", "train them first: ./main.py --train-digits {listed}")
    for d in digits:
        locate(output_dir, manifest[d].generator, d)
    return [manifest[d].generator for d in digits]


def snapshot_entries(output_dir, digits=ALL_DIGITS, manifest=None):
    """For each digit in `digits`, the `Entry`s of every snapshot of every run (run 1's first), every file checked.

    Raises:
      UserError: naming the digits that kept no snapshots, or the first damaged file.
    """
    manifest = load_manifest(output_dir) if manifest is None else manifest
    missing = [d for d in digits if d not in manifest or not manifest[d].snapshots]
    if missing:
        remedy = (
            "train them with snapshots kept (./main.py --train-digits {listed} --snapshots 4; add --restart if they "
            "were trained without), or draw from generator.keras (--snapshot-mixture=false)"
        )
        raise _missing(output_dir, missing, "snapshots", remedy)
    for d in digits:
        for entry in manifest[d].snapshots:
            locate(output_dir, entry, d)
    return [list(manifest[d].snapshots) for d in digits]


def classifier_entries(output_dir, classifier_config, digits=ALL_DIGITS):
    """For each digit, the `Entry`s the synthetic classifier draws from (see `classifier_samplers`), each file
    checked by `locate`, and with `rejection_candidates` > 1 each run's discriminator by `discriminator_run`.
    It loads no model, so a command can refuse a file that is missing, truncated or not a .keras archive
    before TensorFlow starts (a checkpoint's contents are read when rejection.py loads its D)."""
    if classifier_config.snapshot_mixture:
        entries = snapshot_entries(output_dir, digits)
    else:
        entries = [[entry] for entry in kept_entries(output_dir, digits)]
    if classifier_config.rejection_candidates > 1:
        for digit, digit_entries in zip(digits, entries):
            for entry in digit_entries:
                discriminator_run(output_dir, entry, digit)
    return entries


def discriminator_run(output_dir, entry, digit):
    """The run whose discriminator filters `entry`'s images (rejection sampling), checked without TensorFlow.

    Returns:
      (its folder, the GAN settings its run.json records, as a dict).

    Raises:
      UserError: a conditional entry (its one network has no per-digit D here), a damaged run.json,
        or a run without checkpoint state or recorded settings.
    """
    if entry.label is not None:
        raise UserError(
            f"digit {digit}: rejection sampling judges with a per-digit run's discriminator; a conditional "
            "family's generators have none here (--rejection-candidates 1)"
        )
    folder = outputs.digit_dir(output_dir, digit, entry.run)
    files = outputs.training_files(folder)
    record = outputs.read_json(files.record, retrain_digit(digit)) or {}
    if not os.path.exists(os.path.join(files.checkpoints, "checkpoint")) or not isinstance(record.get("config"), dict):
        raise UserError(f"{folder} has no checkpoint and run.json to take its discriminator from; {retrain_digit(digit)}")
    return folder, record["config"]


def stream_entries(output_dir, classifier_config, digits=ALL_DIGITS):
    """`classifier_entries`, or None when the classifier draws from each digit's kept generator alone at
    N(0, 1): `--evaluate` then measures its stream as the kept generators' row, not again.

    Raises:
      MissingGenerators: as `classifier_entries` (the report says the stream is not measured).
    """
    cfg = classifier_config
    if not cfg.snapshot_mixture and all(cfg.noise_scale_of(d) == 1.0 for d in digits) and cfg.rejection_candidates == 1:
        return None
    return classifier_entries(output_dir, cfg, digits)


def kept_samplers(output_dir, digits=ALL_DIGITS, noise_scale=1.0, manifest=None):
    """One `Sampler` per digit: the generator training kept, in `digits` order (files as `kept_entries`)."""
    entries = kept_entries(output_dir, digits, manifest)
    return [load_sampler(output_dir, e, d, noise_scale) for d, e in zip(digits, entries)]


def snapshot_samplers(output_dir, digits=ALL_DIGITS, noise_scale=1.0, manifest=None):
    """For each digit in `digits`, the `Sampler`s of every snapshot of every run (files as `snapshot_entries`)."""
    entries = snapshot_entries(output_dir, digits, manifest)
    return [[load_sampler(output_dir, e, d, noise_scale) for e in digit_entries] for d, digit_entries in zip(digits, entries)]


def classifier_samplers(output_dir, classifier_config, digits=ALL_DIGITS):
    """What the synthetic classifier draws from: for each digit, a list of `Sampler`s in equal shares.

    With `snapshot_mixture`, every snapshot of every run of the digit; else its
    kept generator. Either way at the classifier's noise scale of the digit (`noise_scale_of`), and with
    `rejection_candidates` > 1 filtered by each run's discriminator (rejection.py). The export
    draws from the same samplers, so it is the data the classifier learned from.
    """
    entries = classifier_entries(output_dir, classifier_config, digits)
    samplers = [
        [load_sampler(output_dir, e, d, classifier_config.noise_scale_of(d)) for e in digit_entries] for d, digit_entries in zip(digits, entries)
    ]
    if classifier_config.rejection_candidates > 1:
        from mnistgan import rejection  # Deferred: imports TensorFlow.

        samplers = rejection.filtered(output_dir, samplers, digits, classifier_config.rejection_candidates)
    return samplers


def run_ids(samplers_by_digit, digits=ALL_DIGITS):
    """The run id of every run the samplers come from: {"d": id of run 1, "d/run-r": id of run r > 1}.

    A classifier records them, so that it refuses to resume on other generators.
    """
    ids = {}
    for digit, samplers in zip(digits, samplers_by_digit):
        for sampler in samplers:
            run = sampler.entry.run if sampler.entry else 1
            key = str(digit) if run == 1 else f"{digit}/{outputs.RUN_DIR.format(run=run)}"
            ids[key] = sampler.entry.run_id if sampler.entry else None
    return ids
