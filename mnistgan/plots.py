"""Training curves as pictures: each digit's losses and Fréchet distance over its steps.

Drawn with matplotlib's object API on the Agg canvas (off-screen, no pyplot
state), from the metrics.csv each GAN run writes.
"""

import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mnistgan import outputs


def read_metrics(path, remedy="rerun the digit with --restart"):
    """The columns of a metrics.csv as float64 arrays (an empty cell is NaN), read by `outputs.MetricsCsv`.

    Returns:
      {column: (rows,)}, or None when the file is absent or has no rows.

    Raises:
      UserError: if the file is damaged, by MetricsCsv's one rule.
    """
    rows = outputs.MetricsCsv(path, (), remedy).rows()
    if not rows:
        return None
    return {name: np.array([float(r[name]) if r[name] else np.nan for r in rows]) for name in rows[0]}


def _plot(axes, steps, values, **style):
    """Plots the measured points of `values` (NaN: not measured at that step); False if none."""
    kept = ~np.isnan(values)
    if not kept.any():
        return False
    axes.plot(steps[kept], values[kept], **style)
    return True


def _log_scale(axes):
    """A log y axis labelled with plain numbers (40, 60, 100), not powers of ten."""
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    axes.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))


def unit_title(unit):
    """How a plot names a training unit: "digit 3", or a conditional family's name for its one network."""
    return f"digit {unit}" if isinstance(unit, int) else f"{unit} (every digit)"


def digit_curves(metrics, digit):
    """Two panels: both losses, and the Fréchet distance (log scale) over training steps.

    `digit` is the training unit: a digit, or a conditional family's name.
    """
    figure = Figure(figsize=(9, 3), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    losses, quality = figure.subplots(1, 2)
    steps = metrics["step"]
    for name in ("d_loss", "g_loss"):
        _plot(losses, steps, metrics.get(name, np.full_like(steps, np.nan)), label=name, marker=".")
    losses.set(title=f"{unit_title(digit)}: losses", xlabel="step")
    losses.legend()
    drawn = _plot(quality, steps, metrics.get("frechet_distance", np.full_like(steps, np.nan)), marker="o", color="C2")
    quality.set(title=f"{unit_title(digit)}: Fréchet distance (lower is better)", xlabel="step")
    if drawn:
        _log_scale(quality)
    else:
        quality.text(0.5, 0.5, "not measured (--eval-every 0)", ha="center", va="center", transform=quality.transAxes)
    return figure


def quality_overview(metrics_by_digit):
    """Every unit's Fréchet distance over steps in one panel (log scale); keys are digits or family names."""
    figure = Figure(figsize=(9, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for index, (unit, metrics) in enumerate(sorted(metrics_by_digit.items(), key=lambda item: str(item[0]))):
        fd = metrics.get("frechet_distance", np.full_like(metrics["step"], np.nan))
        _plot(axes, metrics["step"], fd, label=unit_title(unit), marker=".", color=f"C{unit if isinstance(unit, int) else index}")
    axes.set(title="Fréchet distance during training (lower is better)", xlabel="step")
    _log_scale(axes)
    if axes.lines:
        axes.legend(ncols=5, fontsize="small")
    return figure


def save_figure(path, figure):
    """Saves a figure as PNG, written under a temporary name and renamed."""
    with outputs.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def save_training_curves(output_dir, digits):
    """Writes digit-N/curves.png for each digit with a metrics.csv, and the overview of all of them.

    `digits` may also hold conditional families' names (their <family>/curves.png).

    Returns:
      {digit: path} of the digits drawn and the overview's path (None when no digit has metrics).
    """
    drawn, metrics_by_digit = {}, {}
    for digit in digits:
        metrics = read_metrics(outputs.digit_metrics_path(output_dir, digit))
        if metrics is None or "step" not in metrics:
            continue
        metrics_by_digit[digit] = metrics
        drawn[digit] = outputs.curves_path(output_dir, digit)
        save_figure(drawn[digit], digit_curves(metrics, digit))
    overview = None
    if metrics_by_digit:
        overview = outputs.quality_curves_path(output_dir)
        save_figure(overview, quality_overview(metrics_by_digit))
    return drawn, overview
