"""The service's run freezes start-up's objects out of the garbage collector and thaws them
when it ends, so a service stopped inside a longer process can be collected."""

from __future__ import annotations

import gc
import weakref

from mmstream.ops.process import settled


class _Client:
    """Stands for a Kafka client held in a reference cycle, as a service's clients are."""

    def __init__(self) -> None:
        self.me = self


def test_objects_frozen_for_a_run_are_collected_after_it() -> None:
    client = _Client()
    gone = weakref.ref(client)
    with settled():
        assert gc.get_freeze_count() > 0
        del client
        gc.collect()
        assert gone() is not None  # frozen: the collector's passes leave it alone
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gone() is None


def test_a_run_that_raises_thaws_too() -> None:
    try:
        with settled():
            raise RuntimeError("the loop failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
