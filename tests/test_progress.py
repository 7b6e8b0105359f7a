import io

from mnistgan import progress


def test_the_rate_and_eta_come_from_recent_steps_not_the_first_call_with_its_tracing(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    run = progress.Progress("digit 5", 0, 1000, interval_s=0.0, stream=stream)
    now[0] += 30.0  # The first call: one step, mostly tracing.
    run.update(1)
    for step in range(11, 211, 10):  # Then 10 steps a second.
        now[0] += 1.0
        run.update(step)
    assert run.steps_per_second(201) < 5  # The mean since the start carries the 30 s of tracing ...
    assert abs(run.recent_rate(201) - 10.0) < 1e-6  # ... the shown rate does not,
    assert "10.0 steps/s" in stream.getvalue().splitlines()[-1] and "ETA 1:19" in stream.getvalue().splitlines()[-1]


def test_the_recent_rate_forgets_steps_older_than_its_window(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    run = progress.Progress("digit 5", 0, 100_000, interval_s=1e9, stream=io.StringIO())
    step = 0
    for _ in range(120):  # Two minutes at 20 steps a second ...
        now[0] += 1.0
        step += 20
        run.update(step)
    for _ in range(120):  # ... then two at 5 (the machine got busy).
        now[0] += 1.0
        step += 5
        run.update(step)
    assert abs(run.recent_rate(step) - 5.0) < 0.2
