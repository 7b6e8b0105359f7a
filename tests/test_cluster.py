"""--engine ray on a real Ray cluster of this machine: a head with no CPUs and two worker nodes of one CPU each.

The nodes are processes this module starts and stops by their process groups
(mnistgan.local_cluster), never with `ray stop`, which would end every Ray
process on the machine. Every Ray instance here keeps its files in a temporary
folder of its own (RAY_TMPDIR), never in the user's /tmp/ray; the last test
checks that the cluster leaves nothing behind (issue 47).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
import pytest

from tests.conftest import ROOT, TINY_WIDTH_FLAGS, run_main

pytest.importorskip("ray", reason="Ray is installed by make test (requirements-ray.txt)")

from mnistgan import local_cluster  # noqa: E402

# Tiny runs: a few seconds of training each.
TINY = ("--batch-size", "8", "--eval-every", "0", "--runs-per-digit", "1")
# And the networks at a quarter width, where their size is not what a test checks.
SMALL = (*TINY, *TINY_WIDTH_FLAGS)


def ray_processes(marker):
    """The live processes whose environment holds `marker` (NAME=value), as {pid: command line}.

    Every process a Ray instance starts inherits its starter's environment, renamed (ray::...) or not.
    """
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rpartition(b")")[2].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # Ended meanwhile, or another user's.
            continue
        if marker.encode() in environ and state != b"Z":
            found[int(pid)] = command
    return found


@pytest.fixture
def stale():
    """Ray's temporary folder of this test's own (RAY_TMPDIR) with the address file `ray_current_cluster` of a
    cluster that has stopped: it names a port of 127.0.0.1 where nothing listens.

    Attributes: `path` of the file, the `address` it names, the `folder` and the `env` of a command that reads it.
    """
    folder = tempfile.mkdtemp(prefix="ray-")  # Short: a Ray instance started with it keeps its Unix sockets there.
    path = os.path.join(folder, "ray", "ray_current_cluster")
    os.makedirs(os.path.dirname(path))
    address = f"127.0.0.1:{local_cluster.free_port()}"
    with open(path, "w", encoding="utf-8") as f:
        f.write(address)
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    # A token of the test's own: for an instance it starts, Ray would otherwise write one into ~/.ray.
    env.update(RAY_TMPDIR=folder, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=os.urandom(32).hex())
    yield types.SimpleNamespace(path=path, address=address, folder=folder, env=env)
    shutil.rmtree(folder)


# Before any test of the module's cluster: with one Ray instance running here, Ray's "auto" joins it, not the file.
def test_without_address_a_stale_address_file_is_not_joined(stale, tmp_path, real_mnist_dir):
    every = ("--steps", "4", "--sample-every", "2", "--checkpoint-every", "2", *SMALL, "--mnist-dir", real_mnist_dir)
    result = run_main("--train-digits", "3", *every, "--engine", "ray", "--output-dir", str(tmp_path / "out"), env=stale.env)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "digit-3" / "run.json").read_text())
    assert record["status"] == "done" and record["steps_done"] == 4
    with open(stale.path, encoding="utf-8") as f:
        assert f.read() == stale.address  # Not the command's to touch.
    assert not ray_processes(f"RAY_TMPDIR={stale.folder}")  # Its own instance stopped with it.


def test_with_address_auto_a_stale_address_file_is_one_line(stale, tmp_path):
    from ray._private import services  # pylint: disable=import-outside-toplevel

    if services.find_gcs_addresses():
        pytest.skip("a Ray instance runs on this machine: Ray's --address auto joins it, not the address file")
    result = run_main("--train-digits", "3", "--engine", "ray", "--address", "auto", "--output-dir", str(tmp_path / "out"), env=stale.env, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert f"address file {stale.path} names {stale.address}, where nothing answers" in line, line
    assert "ray stop" in line and "drop --address" in line, line
    assert not (tmp_path / "out" / "digit-3").exists()


@pytest.fixture(scope="module")
def cluster():
    cluster = local_cluster.LocalCluster(workers=2, cpus=1)
    yield cluster
    cluster.stop()


def on(cluster, *args):
    """main.py --engine ray on `cluster` with `args`; returns the CompletedProcess."""
    return run_main(*args, "--engine", "ray", "--address", cluster.address, env=cluster.env)


def test_two_digits_train_on_the_worker_nodes_as_they_do_locally(cluster, tmp_path, real_mnist_dir):
    every = ("--steps", "40", "--sample-every", "10", "--checkpoint-every", "10", *SMALL, "--mnist-dir", real_mnist_dir)
    result = on(cluster, "--train-digits", "3,5", *every, "--output-dir", str(tmp_path / "output"))
    assert result.returncode == 0, result.stderr[-3000:]
    local = run_main("--train-digits", "3,5", "--workers", "1", *every, "--output-dir", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr[-3000:]
    on_cluster, at_home = tmp_path / "output", tmp_path / "local"
    nodes = set()
    for digit in (3, 5):
        record = json.loads((on_cluster / f"digit-{digit}" / "run.json").read_text())
        nodes.add(record["node"].split()[-1])
        assert record["status"] == "done" and record["steps_done"] == 40
    # One run per one-CPU node: never two on one core, never on the head, which has no CPU.
    assert nodes == {node_id[:8] for node_id in cluster.ids.values()}

    def files(folder):
        skip = {"logs", ".cluster", ".locks"}
        return sorted(
            os.path.relpath(os.path.join(root, n), folder)
            for root, _, names in os.walk(folder)
            for n in names
            if not set(os.path.relpath(root, folder).split(os.sep)) & skip and n != "owner.json"
        )

    assert files(on_cluster) == files(at_home)
    for digit in (3, 5):
        ours = np.genfromtxt(on_cluster / f"digit-{digit}" / "metrics.csv", delimiter=",", names=True)
        theirs = np.genfromtxt(at_home / f"digit-{digit}" / "metrics.csv", delimiter=",", names=True)
        np.testing.assert_array_equal(ours["step"], theirs["step"])
        # One thread per task here, two in the local process: sums add up in another order.
        np.testing.assert_allclose(ours["d_loss"], theirs["d_loss"], rtol=0.05, atol=0.02)
        np.testing.assert_allclose(ours["g_loss"], theirs["g_loss"], rtol=0.05, atol=0.02)


def test_a_node_that_does_not_see_the_output_folder_is_refused(cluster, tmp_path, real_mnist_dir):
    shared = tmp_path / "shared"
    shared.mkdir()
    # This node's own view of the machine: an empty folder mounted over the shared one.
    blind = ("unshare", "--mount", "--propagation", "private", "sh", "-c", f'mount -t tmpfs none "{shared}" && exec "$0" "$@"')
    blind_id = cluster.add("blind", "--num-cpus=1", wrap=blind)
    try:
        result = on(cluster, "--train-digits", "3", "--steps", "4", *SMALL, "--mnist-dir", real_mnist_dir, "--output-dir", str(shared / "output"))
        assert result.returncode == 2, result.stderr[-2000:]
        message = result.stderr.strip().splitlines()[-1]
        assert blind_id[:8] in message and "does not see the output folder" in message, message
        assert not (shared / "output" / "digit-3").exists()  # Refused before any task.
    finally:
        cluster.remove("blind")


def test_a_node_killed_mid_training_costs_a_resume_not_a_restart(cluster, tmp_path, real_mnist_dir):
    output = tmp_path / "output"
    # Killed right after checkpoint 20, the run has 40 steps to go: it resumes on the other node.
    args = ("--train-digits", "3", "--steps", "60", "--sample-every", "20", "--checkpoint-every", "20", *TINY)
    command = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "main.py"), *args, "--engine", "ray", "--address", cluster.address,
         "--mnist-dir", real_mnist_dir, "--output-dir", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=cluster.env,
    )  # fmt: skip
    checkpoint = output / "digit-3" / "checkpoints" / "ckpt-20.index"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert command.poll() is None and time.monotonic() < deadline, "no checkpoint 20 appeared"
        time.sleep(0.05)
    owner = json.loads((output / "digit-3" / "owner.json").read_text())["node"].split()[-1]
    victim = next(name for name, node_id in cluster.ids.items() if node_id.startswith(owner))
    killed_at = time.time()
    cluster.nodes[victim].kill()
    _, err = command.communicate(timeout=240)
    assert command.returncode == 0, err[-3000:]
    survivor = next(node_id for name, node_id in cluster.ids.items() if name != victim)
    record = json.loads((output / "digit-3" / "run.json").read_text())
    assert record["steps_done"] == 60 and record["node"].split()[-1] == survivor[:8]
    assert "digit 3: resuming from step" in err
    steps = np.genfromtxt(output / "digit-3" / "metrics.csv", delimiter=",", names=True)["step"]
    np.testing.assert_array_equal(steps, np.arange(20, 61, 20))
    samples = output / "digit-3" / "samples"
    assert os.path.getmtime(samples / "step-000020.png") < killed_at  # Kept from before the kill, not drawn again.
    assert os.path.getmtime(samples / "step-000060.png") > killed_at


def test_without_ray_one_line_says_how_to_install_it(tmp_path):
    fake = tmp_path / "site" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    result = run_main("--train-digits", "3", "--engine", "ray", "--output-dir", str(tmp_path / "out"), env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("make setup ENGINE=ray (or .venv/bin/pip install -r requirements-ray.txt)")


def test_a_cluster_that_is_not_there_is_one_line(tmp_path):
    result = run_main("--train-digits", "3", "--engine", "ray", "--address", f"127.0.0.1:{local_cluster.free_port()}", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "cannot reach the Ray cluster" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "digit-3").exists()


def test_the_cluster_leaves_no_ray_state_behind(cluster):
    """Last in the module: stops its cluster, after which no address file, Ray folder or process of it is left."""
    from ray._private import utils  # pylint: disable=import-outside-toplevel

    cluster.stop()
    port = cluster.address.rsplit(":", 1)[1]
    left = utils.read_ray_address(None)  # What Ray's default temporary folder names: a driver without address joins it.
    assert not (left or "").endswith(f":{port}"), f"the default address file names this cluster: {left}"
    assert not os.path.exists(cluster.temp_dir)
    assert not ray_processes(f"RAY_AUTH_TOKEN={cluster.env['RAY_AUTH_TOKEN']}")  # The cluster's own token.
