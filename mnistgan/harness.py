"""The one training loop that the GAN, the classifier and the evaluator share.

A `Harness` owns what every run does the same way: resuming from its
`tf.train.CheckpointManager`, running compiled chunks of steps up to the next
event (a sample, an evaluation, a checkpoint, the end), each sized to last about a
second on the machine at hand (`CallSizer`), saving checkpoints,
reporting progress and the losses, and stopping. What differs is a `Task`'s
hooks: what a chunk of steps is, and what happens at each event. (The split
follows tensorflow/models' orbit: a Controller runs a StandardTrainer.)
"""

import dataclasses
import glob
import os
import shutil
import time

import tensorflow as tf

from mnistgan import outputs


class NonFiniteLoss(Exception):
    """A loss became NaN or inf in steps `first`-`last`; the last checkpoint is kept."""

    def __init__(self, first, last):
        super().__init__(f"step {first}-{last}")
        self.first, self.last = first, last


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a run's events fall.

    Attributes:
      total: the step the run ends at; every event with an interval is due there too.
      every: event name ("sample", "eval", "checkpoint", ...) -> steps between
        its occurrences (0: never).
    """

    total: int
    every: dict

    def steps_to_next_event(self, step, most):
        """How many steps the next compiled call runs from `step`: to the next event, at most `most`."""
        return min(most, self.total - step, *(every - step % every for every in self.every.values() if every > 0))

    def due(self, step):
        """The set of event names due at `step` (empty between events)."""
        return {name for name, every in self.every.items() if every > 0 and (step % every == 0 or step == self.total)}


# Seconds a compiled call of steps should last: Python sees Ctrl-C and draws progress only between calls.
CALL_SECONDS = 1.0
# The most steps in one call, whatever the machine's speed.
MOST_STEPS_PER_CALL = 1000


class CallSizer:
    """How many steps the next compiled call runs, so that each lasts about `target_s` seconds here.

    A step count tuned on one processor makes calls of a minute on a processor twenty times slower
    (bfloat16 without native support), where Ctrl-C and progress lines then wait that long. So the first
    call, which also traces the step, runs one step; every later call runs as many steps as fit in
    `target_s` at the recent seconds per step, growing at most twofold from one call to the next.
    """

    def __init__(self, target_s=CALL_SECONDS, most=MOST_STEPS_PER_CALL):
        self.target_s, self.most = target_s, most
        self.count = 1  # Steps the next call may run.
        self.seconds_per_step = None  # Smoothed over the calls after the first.
        self.traced = False

    def observe(self, steps, seconds):
        """Notes that a call ran `steps` steps in `seconds` wall seconds."""
        if not self.traced:  # The first call's time is mostly tracing.
            self.traced = True
            return
        latest = seconds / steps
        self.seconds_per_step = latest if self.seconds_per_step is None else (self.seconds_per_step + latest) / 2
        fits = int(self.target_s / max(self.seconds_per_step, 1e-9))
        self.count = max(1, min(self.most, 2 * self.count, fits))


class Task:
    """What a run supplies to the harness; every hook but `train_steps` may be left as is."""

    def train_steps(self, count):
        """Runs `count` (int32 tensor) steps; returns ({name: last loss}, whether all were finite)."""
        raise NotImplementedError

    def after_steps(self, step, losses):
        """After each chunk, with the losses (floats) of its last step."""

    def on_events(self, step, due):
        """At `step`, where the events named in `due` fall, before a checkpoint."""

    def before_checkpoint(self, step):
        """Just before a checkpoint is saved (whatever changes the saved state goes here)."""

    def after_checkpoint(self, step):
        """Just after a checkpoint is saved: what must not be newer than it (records, models)."""

    def after_events(self, step, due):
        """After the events of `step` and its checkpoint, if one was due; True ends the run there (with one)."""
        return False


class Harness:
    """Resume, the chunked loop and the checkpoints of one run.

    Args:
      checkpoint: the `tf.train.Checkpoint` that holds the run's whole state.
      directory: the run's checkpoints/ folder.
      remedy: what to do about a damaged checkpoint.
      guard: called before the files of any event are written; it raises to stop a run that must
        not write any more (an attempt that a newer one took over, ownership.py).
    """

    def __init__(self, checkpoint, directory, remedy, guard=None):
        self.checkpoint = checkpoint
        self.manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=2)
        self.remedy = remedy
        self.guard = guard

    def restore(self, prefix):
        """Puts the state back to the checkpoint `prefix` (from `outputs.latest_checkpoint`); None: a fresh run."""
        if prefix:
            outputs.restore_checkpoint(self.checkpoint, prefix, self.remedy)

    def latest_step(self):
        """The step of the newest checkpoint saved (0 when none is)."""
        return outputs.checkpoint_step(self.manager.latest_checkpoint)

    def train(self, task, schedule, start, progress, writer, sizer=None):
        """Trains from step `start` to `schedule.total`, or until `task` stops it.

        Args:
          progress: a `Progress` for this run (from `start` to `schedule.total`).
          writer: the TensorBoard summary writer; each chunk's losses go there.
          sizer: sizes the compiled calls (a new `CallSizer` when None).

        Returns:
          The last step trained.

        Raises:
          NonFiniteLoss: naming the chunk whose loss was not finite.
        """
        step = start
        sizer = sizer or CallSizer()
        while step < schedule.total:
            count = schedule.steps_to_next_event(step, sizer.count)
            called = time.monotonic()
            losses, finite = task.train_steps(tf.constant(count, tf.int32))
            if not bool(finite):
                raise NonFiniteLoss(step + 1, step + count)
            step += count
            losses = {name: float(value) for name, value in losses.items()}
            sizer.observe(count, time.monotonic() - called)
            task.after_steps(step, losses)
            progress.update(step, **losses)
            with writer.as_default(step=step):
                for name, value in losses.items():
                    tf.summary.scalar(name, value)
            due = schedule.due(step)
            if not due:
                continue
            if self.guard:
                self.guard()
            task.on_events(step, due)
            if "checkpoint" in due:
                self._save(task, step)
            if task.after_events(step, due):
                if "checkpoint" not in due:
                    self._save(task, step)
                break
        return step

    def _save(self, task, step):
        task.before_checkpoint(step)
        try:
            self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError):
            # A save that fails (a full disk) leaves ckpt-N_temp/, or ckpt-N files the state file does not
            # name yet, behind; the state file still names the last good checkpoint, which a resume restores.
            directory = self.manager.directory
            if outputs.checkpoint_step(tf.train.latest_checkpoint(directory)) == step:
                raise  # The state file names it: the checkpoint was saved whole.
            for leftover in glob.glob(os.path.join(directory, f"ckpt-{step}[._]*")) + glob.glob(os.path.join(directory, "checkpoint.tmp*")):
                if os.path.isdir(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    os.remove(leftover)
            raise
        task.after_checkpoint(step)


class Clock:
    """A run's wall time across resumes: `before` seconds in earlier sessions, plus this one's."""

    def __init__(self, before):
        self.before = before
        self.session_start = time.monotonic()

    def elapsed(self):
        return self.before + time.monotonic() - self.session_start


def write_record(path, record, **fields):
    """Updates the run record with `fields` and what every record notes; writes it atomically as JSON."""
    record.update(fields, peak_memory_mb=outputs.peak_memory_mb(), versions=outputs.library_versions())
    outputs.write_json(path, record)
