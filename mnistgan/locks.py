"""One writer per piece of work in an output folder.

A command that trains something (a run of a digit, a classifier) holds an
exclusive `fcntl.flock` on a lock file for it in `output/.locks/`, with the
holder's process id, host and command written inside. A second command that
would train the same thing is refused before any work, in one line naming the
holder. The operating system drops a flock when its process ends, however it
ends (SIGKILL, a crash), so a lock left behind never blocks; it is taken over
with a one-line notice, because the work it guarded stopped mid-way.
`--evaluate` and `--export-mnist` train nothing and take no such lock (what
they write, the report and the export, is written atomically); the report asks
`digits_in_training` which digits are still training, and `--train-mnist`
refuses to learn from them. Brief shared updates (generators.json,
results.jsonl, training the evaluator once) wait for each other (`waiting`).
"""

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time

from absl import logging

from mnistgan import config as config_lib, outputs
from mnistgan.errors import UserError

# A lock that another process only probes (`is_held`) is busy for a moment: retry this long before refusing.
RETRY_S = 1.0


def digit_lock_name(digit, run=1):
    """The lock of one run of a digit ("digit-3-run-2") or of a conditional family's network ("cdcgan-run-2")."""
    name = digit if isinstance(digit, str) else f"digit-{digit}"
    return name if run == 1 else f"{name}-run-{run}"


def _flock(handle, wait):
    """An exclusive flock on `handle`: waiting for it, or trying for RETRY_S (a probe holds it a moment)."""
    if wait:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + RETRY_S
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _holder_text():
    return json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    )


def _describe(text):
    """'process 123 on host h (started ..., `command`)' from a lock file's text."""
    try:
        holder = json.loads(text)
        return f"process {holder['pid']} on host {holder['host']} (started {holder['started']}: {holder['command']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


class Lock:
    """An exclusive lock on one piece of work; `acquire` refuses when another process holds it.

    Args:
      output_dir: the output folder.
      name: what the lock guards, as `lock_path` takes it.
      what: how messages name the work, e.g. "digit 3".
    """

    def __init__(self, output_dir, name, what):
        self.path, self.what, self.output_dir = outputs.lock_path(output_dir, name), what, output_dir
        self.file = None

    def acquire(self, wait=False):
        """Takes the lock, or raises UserError naming its holder. Notes a lock left by a process that ended.

        Args:
          wait: wait for the holder to let go instead (for a moment's work, such as updating a record).
        """
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            _flock(handle, wait)
        except OSError as e:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise UserError(
                f"{self.what} in {self.output_dir} is being trained by {holder}; wait for it to end (or stop it), "
                "then run this command again"
            ) from None
        handle.seek(0)
        left = handle.read().strip()
        if left:
            logging.warning("%s: taking over the lock left by %s, which no longer runs", self.what, _describe(left))
        handle.seek(0)
        handle.truncate()
        handle.write(_holder_text())
        handle.flush()
        self.file = handle
        return self

    def release(self):
        """Empties the lock file (a clean end) and drops the lock."""
        if self.file is None:
            return
        self.file.seek(0)
        self.file.truncate()
        self.file.flush()
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
        self.file = None


@contextlib.contextmanager
def holding(locks):
    """Acquires every lock of `locks` (all or none), yields, then releases them."""
    taken = []
    try:
        for lock in locks:
            taken.append(lock.acquire())
        yield taken
    finally:
        for lock in reversed(taken):
            lock.release()


@contextlib.contextmanager
def waiting(output_dir, name):
    """Holds the lock of a brief shared update `name`, waiting for another command's turn first."""
    lock = Lock(output_dir, name, name).acquire(wait=True)
    try:
        yield
    finally:
        lock.release()


def is_held(output_dir, name):
    """Whether another process holds the lock of `name` now (without taking it)."""
    path = outputs.lock_path(output_dir, name)
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def digits_in_training(output_dir):
    """The digits another command is training now: it holds the lock of one of their runs, or of a run of a
    conditional family's network that trains them (as its run.json lists them)."""
    busy = {
        digit for digit in range(10)
        if any(is_held(output_dir, digit_lock_name(digit, run)) for run in outputs.run_numbers(output_dir, digit))
    }  # fmt: skip
    for family in config_lib.CONDITIONAL_FAMILIES:
        for run in outputs.run_numbers(output_dir, family):
            if is_held(output_dir, digit_lock_name(family, run)):
                record = outputs.read_json(outputs.training_files(outputs.digit_dir(output_dir, family, run)).record) or {}
                busy.update(record.get("digits") or range(10))
    return sorted(busy)


def refuse_digits_in_training(output_dir):
    """Refuses to learn from a folder in which another command is still training digits (`digits_in_training`).

    Raises:
      UserError: naming those digits.
    """
    busy = digits_in_training(output_dir)
    if busy:
        listed = ",".join(map(str, busy))
        raise UserError(f"digit(s) {listed} in {output_dir} are still training; run this command once they have finished")
