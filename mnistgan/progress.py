"""A progress line per training run: step / total, steps per second, ETA, losses.

On a terminal it redraws one line; otherwise (a log file, CI) it writes a
line every `interval_s` seconds, so logs stay short.
"""

import collections
import sys
import time

# The window over which the shown rate (and so the ETA) is measured: recent, so that the first call's
# tracing, or a machine that got busier, does not skew it for long.
RATE_WINDOW_S = 60.0


class Progress:
    """Reports progress of one run on stderr.

    Args:
      label: what is running, e.g. "digit 8".
      start_step: the step the run resumes from.
      total: the step it ends at.
      interval_s: seconds between lines when stderr is not a terminal.
    """

    def __init__(self, label, start_step, total, interval_s=30.0, stream=None):
        self.label = label
        self.start_step = start_step
        self.total = total
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.last_print = self.started
        self.recent = collections.deque()  # (time, step) of the updates within RATE_WINDOW_S.

    def steps_per_second(self, step):
        """The mean rate since this session of the run started (tracing included), as run records note it."""
        elapsed = time.monotonic() - self.started
        return (step - self.start_step) / elapsed if elapsed > 0 else 0.0

    def _note(self, now, step):
        """Keeps (now, step) among the updates of the last RATE_WINDOW_S."""
        self.recent.append((now, step))
        while len(self.recent) > 2 and now - self.recent[1][0] > RATE_WINDOW_S:
            self.recent.popleft()

    def recent_rate(self, step):
        """Steps per second over the updates of the last RATE_WINDOW_S, from the first update on (the first
        call's tracing left out); the mean since the start (`step` reached) until two updates exist."""
        if len(self.recent) < 2:
            return self.steps_per_second(step)
        (then, step_then), (latest, step_latest) = self.recent[0], self.recent[-1]
        if latest - then <= 0 or step_latest <= step_then:
            return self.steps_per_second(step)
        return (step_latest - step_then) / (latest - then)

    def update(self, step, **values):
        now = time.monotonic()
        self._note(now, step)
        rate = self.recent_rate(step)
        if not self.tty and now - self.last_print < self.interval_s and step < self.total:
            return
        self.last_print = now
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        shown = " ".join(f"{k} {v:.3f}" for k, v in values.items())
        line = f"{self.label}: step {step}/{self.total}  {rate:.1f} steps/s  ETA {format_seconds(eta)}  {shown}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
            if step >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text):
        """A line that must not be overwritten (held-out checks, warnings)."""
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()


class RelayedProgress(Progress):
    """A run's `Progress` in a worker or a cluster task: sends its lines to the parent's `ProgressBoard`.

    Args:
      send: puts one event on the parent's queue: ("progress", key, (step, total, steps/s)) or
        ("message", key, text).
      key: the run's (unit, run).
    """

    def __init__(self, send, key, label, start_step, total):
        super().__init__(label, start_step, total, interval_s=1.0)
        self.send, self.key = send, key

    def update(self, step, **values):
        now = time.monotonic()
        self._note(now, step)
        rate = self.recent_rate(step)
        if now - self.last_print < self.interval_s and step < self.total:
            return
        self.last_print = now
        self.send(("progress", self.key, (step, self.total, rate)))

    def message(self, text):
        self.send(("message", self.key, text))


def format_seconds(seconds):
    if seconds != seconds:  # NaN: no rate yet.
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBoard:
    """One progress line for several runs in flight (digits trained by worker processes).

    Each run reports (step, total, steps/s) under its label; the line shows
    every run in flight and an ETA for the whole job. On a terminal it is
    redrawn; otherwise written every `interval_s` seconds.

    Args:
      total_runs: how many runs the whole job has.
      steps_per_run: the steps each run ends at, for the ETA of runs not started.
    """

    def __init__(self, total_runs, steps_per_run, interval_s=30.0, stream=None):
        self.total_runs = total_runs
        self.steps_per_run = steps_per_run
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_print = time.monotonic()
        self.in_flight = {}  # label -> (step, total, steps/s)
        self.finished = 0

    def update(self, label, step, total, rate):
        self.in_flight[label] = (step, total, rate)
        now = time.monotonic()
        if self.tty or now - self.last_print >= self.interval_s:
            self.last_print = now
            self._draw(self.line())

    def finish(self, label):
        self.in_flight.pop(label, None)
        self.finished += 1

    def line(self):
        runs = "  ".join(f"{label} {step}/{total} {rate:.1f}/s" for label, (step, total, rate) in sorted(self.in_flight.items()))
        left = sum(total - step for step, total, _ in self.in_flight.values())
        waiting = self.total_runs - self.finished - len(self.in_flight)
        left += waiting * self.steps_per_run
        rate = sum(r for _, _, r in self.in_flight.values())
        eta = left / rate if rate > 0 else float("nan")
        return f"{runs}  | {self.finished}/{self.total_runs} done  ETA {format_seconds(eta)}"

    def message(self, text):
        """A line that must not be overwritten."""
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()

    def _draw(self, line):
        self.stream.write(("\r\033[K" + line) if self.tty else line + "\n")
        self.stream.flush()
