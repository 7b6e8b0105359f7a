"""The jobs of a `--train-digits` command: one run of one digit each, how messages name them, and their locks.

Free of TensorFlow, so that the parent of worker processes can hand jobs out.
"""

from mnistgan import locks


def run_label(digit, run=1):
    """How messages and the progress board name one run of a digit."""
    return f"digit {digit}" if run == 1 else f"digit {digit} (run {run})"


def jobs_of(config, per_digit):
    """The (digit, run, train_images, validation_images) jobs of `config`: every digit's run 1, then every run 2, ...

    So every digit has a generator as early as one run per digit allows.

    Args:
      config: the whole `Config`.
      per_digit: (digit, train_images, validation_images) tuples, as `data.per_digit` makes them.
    """
    per_digit = list(per_digit)
    runs = range(1, config.gan.runs_per_digit + 1)
    return [(digit, run, train, validation) for run in runs for digit, train, validation in per_digit]


def job_locks(config):
    """A `locks.Lock` for every run that `config` trains: one command per run of a digit at a time."""
    runs = range(1, config.gan.runs_per_digit + 1)
    return [
        locks.Lock(config.output_dir, locks.digit_lock_name(digit, run), run_label(digit, run))
        for digit in config.digits
        for run in runs
    ]
