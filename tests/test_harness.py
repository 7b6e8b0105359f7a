import io
import json
import os

import pytest
import tensorflow as tf

from mnistgan import harness, outputs
from mnistgan.progress import Progress


class CountingTask(harness.Task):
    """Counts steps in a variable; notes every hook call; can stop or turn a loss non-finite."""

    def __init__(self, stop_at=None, nan_at=None):
        self.step = tf.Variable(0, dtype=tf.int64)
        self.checkpoint = tf.train.Checkpoint(step=self.step)
        self.stop_at, self.nan_at = stop_at, nan_at
        self.calls = []

    def train_steps(self, count):
        self.step.assign_add(tf.cast(count, tf.int64))
        bad = self.nan_at is not None and int(self.step) >= self.nan_at
        return {"loss": tf.constant(float("nan") if bad else 1.0 / float(self.step))}, not bad

    def after_steps(self, step, losses):
        assert step == int(self.step)
        self.calls.append(("steps", step))

    def on_events(self, step, due):
        self.calls.append(("events", step, tuple(sorted(due))))

    def before_checkpoint(self, step):
        self.calls.append(("before", step))

    def after_checkpoint(self, step):
        self.calls.append(("after", step))

    def after_events(self, step, due):
        return step == self.stop_at


class FixedSizer(harness.CallSizer):
    """Calls of `count` steps whatever they take, so that the hooks' order does not depend on the machine."""

    def __init__(self, count):
        super().__init__()
        self.count = count

    def observe(self, steps, seconds):
        pass


def run(tmp_path, task, total=10, sizer=None, **every):
    loop = harness.Harness(task.checkpoint, str(tmp_path / "checkpoints"), "start over")
    loop.restore(outputs.latest_checkpoint(str(tmp_path / "checkpoints"), "start over"))
    start = int(task.step)
    schedule = harness.Schedule(total, every or {"sample": 4, "checkpoint": 5})
    progress = Progress("test", start, total, stream=io.StringIO())
    writer = tf.summary.create_file_writer(str(tmp_path / "logs"))
    return loop.train(task, schedule, start, progress, writer, sizer or FixedSizer(3)), loop


def test_schedule_runs_to_the_next_event_and_everything_is_due_at_the_end():
    schedule = harness.Schedule(10, {"sample": 4, "checkpoint": 5, "eval": 0})
    assert [schedule.steps_to_next_event(s, most=3) for s in (0, 3, 4, 5, 8, 9)] == [3, 1, 1, 3, 2, 1]
    assert schedule.due(4) == {"sample"} and schedule.due(5) == {"checkpoint"} and schedule.due(7) == set()
    assert schedule.due(10) == {"sample", "checkpoint"}  # "eval" is off (0).


def test_events_fire_at_their_steps_and_checkpoints_wrap_the_save(tmp_path):
    task = CountingTask()
    last, loop = run(tmp_path, task)
    assert last == 10 and loop.latest_step() == 10
    assert task.calls == [
        ("steps", 3), ("steps", 4), ("events", 4, ("sample",)),
        ("steps", 5), ("events", 5, ("checkpoint",)), ("before", 5), ("after", 5),
        ("steps", 8), ("events", 8, ("sample",)),
        ("steps", 10), ("events", 10, ("checkpoint", "sample")), ("before", 10), ("after", 10),
    ]  # fmt: skip
    assert sorted(n for n in os.listdir(tmp_path / "checkpoints") if n.endswith(".index")) == ["ckpt-10.index", "ckpt-5.index"]


def test_a_resumed_run_starts_at_the_latest_checkpoint(tmp_path):
    first = CountingTask(stop_at=8)  # Stops between checkpoints: a checkpoint is saved there too.
    assert run(tmp_path, first)[0] == 8
    assert first.calls[-3:] == [("events", 8, ("sample",)), ("before", 8), ("after", 8)]
    resumed = CountingTask()
    last, _ = run(tmp_path, resumed)
    assert last == 10 and resumed.calls[0] == ("steps", 10)  # From 8, not 0.


def test_a_non_finite_loss_names_its_chunk_and_keeps_the_last_checkpoint(tmp_path):
    task = CountingTask(nan_at=6)
    with pytest.raises(harness.NonFiniteLoss, match="step 6-8") as caught:
        run(tmp_path, task)
    assert (caught.value.first, caught.value.last) == (6, 8)
    assert outputs.checkpoint_step(outputs.latest_checkpoint(str(tmp_path / "checkpoints"), "x")) == 5


def test_records_are_written_whole_or_not_at_all(tmp_path):
    path = str(tmp_path / "run.json")
    harness.write_record(path, {"status": "running"}, steps_done=5)
    record = json.loads(open(path).read())
    assert record["steps_done"] == 5 and record["status"] == "running" and "versions" in record
    with pytest.raises(TypeError):
        harness.write_record(path, {"status": "done"}, steps_done=object())  # Not JSON: nothing is written.
    assert json.loads(open(path).read())["status"] == "running"
    assert os.listdir(tmp_path) == ["run.json"]  # No temporary file left behind.


def test_calls_are_sized_by_time_one_step_first_then_growing_at_most_twofold():
    sizer = harness.CallSizer(target_s=1.0, most=1000)
    assert sizer.count == 1  # The first call traces the step: one step only.
    sizer.observe(1, 30.0)  # Tracing: not a measure of the step.
    assert sizer.count == 1
    counts = []
    for _ in range(6):  # A machine at 0.05 s a step: 20 steps fit in a second.
        sizer.observe(sizer.count, 0.05 * sizer.count)
        counts.append(sizer.count)
    assert counts == [2, 4, 8, 16, 20, 20]
    slow = harness.CallSizer(target_s=1.0)
    slow.observe(1, 60.0)
    slow.observe(1, 3.0)  # 3 s a step (bfloat16 emulated on AVX2): every call stays one step.
    assert slow.count == 1


class SlowTask(CountingTask):
    """Each step takes `seconds_per_step` on a fake clock (no sleeping); notes how long each call took."""

    def __init__(self, seconds_per_step, clock):
        super().__init__()
        self.seconds_per_step, self.clock, self.call_seconds = seconds_per_step, clock, []

    def train_steps(self, count):
        self.clock[0] += self.seconds_per_step * int(count)
        self.call_seconds.append(self.seconds_per_step * int(count))
        return super().train_steps(count)


# A fast machine, a slow one, bfloat16 emulated (3 s a step), each for a run of as many steps.
@pytest.mark.parametrize("seconds_per_step, total", [(0.002, 3000), (0.05, 1000), (3.0, 60)])
def test_every_call_ends_within_about_its_target_so_ctrl_c_is_seen_soon(tmp_path, monkeypatch, seconds_per_step, total):
    clock = [0.0]
    monkeypatch.setattr(harness.time, "monotonic", lambda: clock[0])
    task = SlowTask(seconds_per_step, clock)
    last, _ = run(tmp_path, task, total=total, sizer=harness.CallSizer(target_s=1.0), checkpoint=total // 3)
    assert last == total
    # Python looks (and sees Ctrl-C) at least every second, or every step where one step takes longer.
    assert max(task.call_seconds) <= max(1.0, seconds_per_step)
    assert len(task.call_seconds) < total * seconds_per_step + 40  # Yet calls hold as many steps as fit in a second.
