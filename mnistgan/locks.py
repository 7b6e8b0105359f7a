"""One writer per piece of work in an output folder.

A command that trains something (a run of a digit, a classifier) holds an
exclusive `fcntl.flock` on a lock file for it in `output/.locks/`, with the
holder's process id, host and command written inside. A second command that
would train the same thing is refused before any work, in one line naming the
holder. The operating system drops a flock when its process ends, however it
ends (SIGKILL, a crash), so a lock left behind never blocks; it is taken over
with a one-line notice, because the work it guarded stopped mid-way.
Commands that only read (`--evaluate`, `--export-mnist`) take no lock; the
report asks `is_held` to say which digits are still training.
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

from mnistgan.errors import UserError

LOCK_DIR = ".locks"


def lock_path(output_dir, name):
    """The lock file of the work called `name` (e.g. "digit-3", "digit-3-run-2", "classifier-real")."""
    return os.path.join(output_dir, LOCK_DIR, f"{name}.lock")


def digit_lock_name(digit, run=1):
    return f"digit-{digit}" if run == 1 else f"digit-{digit}-run-{run}"


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
        self.path, self.what, self.output_dir = lock_path(output_dir, name), what, output_dir
        self.file = None

    def acquire(self, wait=False):
        """Takes the lock, or raises UserError naming its holder. Notes a lock left by a process that ended.

        Args:
          wait: wait for the holder to let go instead (for a moment's work, such as updating a record).
        """
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
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


def is_held(output_dir, name):
    """Whether another process holds the lock of `name` now (without taking it)."""
    path = lock_path(output_dir, name)
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False
