"""What training one run of a digit returns, and the summary table of a `--train-digits` command.

Kept apart from the trainer (which imports TensorFlow) so that the parent of
worker processes can receive and print results without loading TensorFlow.
"""

import dataclasses
import math


@dataclasses.dataclass
class DigitResult:
    """The end state of one digit's run, as run.json records it."""

    digit: int | str  # 0-9, or a conditional family's name
    status: str  # "done" or "failed"
    steps: int
    wall_time_s: float
    d_loss: float
    g_loss: float
    heldout_d_accuracy: float
    best_step: int | None
    best_frechet_distance: float | None
    declined: bool
    folder: str
    stopped_on_decline: bool = False  # Stopped by --stop-on-decline (now or on an earlier run).
    run: int = 1  # Which of the digit's independent runs (GanConfig.runs_per_digit).
    # What the run keeps for the classifier, the report and the export (generators.record_training):
    run_id: str | None = None
    generator: str | None = None  # The kept generator.keras, None when none was saved.
    snapshots: tuple = ()  # The kept snapshot generators, oldest first.
    labels: tuple = ()  # The digits a conditional family's network (`digit` is then its name) draws.

    @property
    def key(self):
        return self.digit, self.run


def print_summary(results):
    """Prints one row per `DigitResult`, in the order given."""
    print(
        f"\n{'digit':>9} | {'status':<6} | {'steps':>6} | {'time':>8} | {'d_loss':>6} | {'g_loss':>6} | "
        f"held-out D acc | best step (FD) | folder"
    )
    for r in results:
        minutes = f"{r.wall_time_s / 60:.1f} min"
        acc = "" if math.isnan(r.heldout_d_accuracy) else f"{r.heldout_d_accuracy:.3f}"
        best = "" if r.best_step is None else f"{r.best_step} ({r.best_frechet_distance:.2f})"
        flag = "  <- quality fell late in training" if r.declined else ""
        if r.stopped_on_decline:
            flag += "; stopped there by --stop-on-decline (run without it to train on)"
        digit = str(r.digit) if r.run == 1 else f"{r.digit} run {r.run}"
        print(
            f"{digit:>9} | {r.status:<6} | {r.steps:>6} | {minutes:>8} | {r.d_loss:>6.3f} | "
            f"{r.g_loss:>6.3f} | {acc:>14} | {best:>14} | {r.folder}{flag}"
        )


def exit_status(results):
    """0 when every digit finished, 1 when any stopped on a non-finite loss."""
    return 0 if all(r.status == "done" for r in results) else 1
