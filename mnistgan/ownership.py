"""Which attempt of a run may write its folder, when a cluster can run a run twice.

On a cluster (cluster.py) a task whose node stops answering is run again
elsewhere, while the first attempt may still be running on the node that was
cut off. Each attempt claims its run's folder by writing `owner.json` with a
fresh token when it starts; the harness asks `check` before it writes the
files of any event (sample grids, models, metrics, checkpoints), so an attempt
that a newer one took over stops before it writes anything more.
Local training needs none of this: its locks (locks.py) allow one writer.
"""

import dataclasses
import os
import uuid

from mnistgan import outputs

OWNER_FILE = "owner.json"


class Superseded(Exception):
    """A newer attempt of this run owns its folder; this one stops without writing more."""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One attempt at training a run: its token, and the node it runs on (for run.json and messages)."""

    node: str
    token: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    def claim(self, folder):
        """Makes this attempt the owner of `folder` (a run's), taking it from any earlier attempt."""
        os.makedirs(folder, exist_ok=True)
        outputs.write_json(os.path.join(folder, OWNER_FILE), {"token": self.token, "node": self.node})

    def check(self, folder):
        """Raises `Superseded` unless this attempt still owns `folder`."""
        path = os.path.join(folder, OWNER_FILE)
        owner = outputs.read_json(path, "it is rewritten by the run's next attempt") or {}
        if owner.get("token") != self.token:
            raise Superseded(
                f"{folder}: a newer attempt of this run (on {owner.get('node', 'an unknown node')}) owns it; "
                f"this attempt on {self.node} stops without writing"
            )
