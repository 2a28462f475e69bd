"""`mmstream run`, killed (SIGKILL) at its first ledger write after a Kafka commit: the one
window where a crash leaves a run `pending` in the ledger while its result is in Kafka.

A test hook only: ``python -m tests.crash_after_commit --config FILE``.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from mmstream.cli import main
from mmstream.ledger.store import Ledger


def _die(self: Ledger, *args: Any, **kwargs: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    Ledger.record_outputs = _die  # type: ignore[method-assign]
    sys.exit(main(["run", *sys.argv[1:]]))
