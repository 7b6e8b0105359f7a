"""A Ray cluster of several nodes on this one machine, for the tests and bench/throughput.py.

Each node is a `ray start --block` process in a session of its own, started
as the README starts a cluster's nodes and stopped by its process group (never
`ray stop`, which would end every Ray process on the machine). The head has no
CPUs, so every task runs on a worker node. Nodes authenticate with one token
(`RAY_AUTH_MODE=token`), as the README sets a real cluster up. Ray's files (the
address file `ray_current_cluster`, sessions, logs, sockets) go to a folder of
the cluster's own, removed when it stops: a driver started later on this
machine must find nothing of it (issue 47).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `ray start --block` process group; `stop` ends it gracefully, `kill` as a power cut would.

    Args:
      args: `ray start` flags.
      env: the node's environment.
      wrap: a command that runs `ray start` (its first argument) in another view of the machine.
    """

    def __init__(self, args, env, wrap=()):
        self.process = subprocess.Popen(
            [*wrap, RAY, "start", "--block", "--disable-usage-stats", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
        )  # fmt: skip

    def signal(self, number):
        try:
            os.killpg(self.process.pid, number)
        except ProcessLookupError:
            pass

    def kill(self):
        self.signal(signal.SIGKILL)
        self.process.wait()


def stop_all(nodes, timeout_s=5):
    """Stops the nodes gracefully, all at once; kills any still running after `timeout_s`."""
    for node in nodes:
        node.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for node in nodes:
        try:
            node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            node.kill()


class LocalCluster:
    """A head with no CPUs and `workers` nodes of `cpus` CPUs each, named "a", "b", ... (a resource each).

    Attributes:
      address: the head's HOST:PORT.
      temp_dir: the folder of its Ray files (RAY_TMPDIR), removed by `stop`.
      env: the environment of its nodes; a driver needs it too (the token).
      nodes: {name: Node} of the worker nodes.
      ids: {name: Ray node id} of the worker nodes.
    """

    def __init__(self, workers=2, cpus=1, timeout_s=90):
        self.address = f"127.0.0.1:{free_port()}"
        # A short path: Ray's Unix sockets live under it, and a socket's path has at most 107 bytes.
        self.temp_dir = tempfile.mkdtemp(prefix="ray-")
        self.env = dict(os.environ, RAY_TMPDIR=self.temp_dir, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=os.urandom(32).hex())
        self.timeout_s = timeout_s
        self.head = Node(["--head", f"--port={self.address.rsplit(':', 1)[1]}", "--num-cpus=0", "--include-dashboard=false"], self.env)
        self.nodes, self.ids = {}, {}
        try:
            self.wait_for(1)  # A node started before its head is up does not join,
            for name in "abcdefgh"[:workers]:  # nor do two that start at once on one machine.
                self.ids[name] = self.add(name, f'--resources={{"node-{name}": 1}}', f"--num-cpus={cpus}")
        except BaseException:
            self.stop()
            raise

    def add(self, name, *args, wrap=()):
        """Starts one more worker node with `ray start` flags `args`; returns its node id once it has joined."""
        before = set(self.alive())
        self.nodes[name] = Node([f"--address={self.address}", *args], self.env, wrap)
        joined = set(self.wait_for(len(before) + 1)) - before
        return joined.pop()

    def remove(self, name):
        """Stops worker node `name` gracefully and waits until the cluster no longer counts it."""
        count = len(self.alive())
        stop_all([self.nodes.pop(name)])
        self.ids.pop(name, None)
        self.wait_for(count - 1)

    def alive(self):
        """{node id: resources} of the live nodes, asked by a short-lived driver ({} while the head is not up)."""
        code = (
            "import json, ray; ray.init(address=%r, logging_level='ERROR'); "
            "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))" % self.address
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=self.env)
        return json.loads(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else {}

    def wait_for(self, count):
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            nodes = self.alive()
            if len(nodes) == count:
                return nodes
            time.sleep(0.5)
        raise RuntimeError(f"the local Ray cluster at {self.address} did not reach {count} live nodes")

    def stop(self):
        """Stops every node, then removes the cluster's Ray files; a second call does nothing."""
        stop_all([*self.nodes.values(), self.head])
        if os.path.isdir(self.temp_dir):
            shutil.rmtree(self.temp_dir)
