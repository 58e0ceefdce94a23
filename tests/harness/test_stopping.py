"""SIGTERM and SIGINT stop a run once, after any clean-up under way: in-process, in milliseconds."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from harness import stopping
from harness.stopping import Stopped, shielded, stop_on_signals


@pytest.fixture(autouse=True)
def _pending_cleared() -> Iterator[None]:
    yield
    stopping._State.pending = None


def test_the_handlers_before_are_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_first_signal_stops_and_later_ones_are_ignored(signum: int) -> None:
    with stop_on_signals() as received:
        with pytest.raises(Stopped) as raised:
            os.kill(os.getpid(), signum)
        assert raised.value.signum == signum and received == [signum]
        assert isinstance(raised.value, KeyboardInterrupt)  # pytest and every `with` unwind as on Ctrl-C
        os.kill(os.getpid(), signal.SIGTERM)  # while the run unwinds: nothing
        assert received == [signum]


def test_a_signal_inside_a_clean_up_waits_for_it_to_finish() -> None:
    done = []
    with stop_on_signals() as received:
        with pytest.raises(Stopped), shielded():
            os.kill(os.getpid(), signal.SIGTERM)
            with shielded():  # nested: raised only when the outermost closes
                done.append("inner")
            done.append("outer")
        assert done == ["inner", "outer"] and received == [signal.SIGTERM]


def test_a_signal_ignored_at_start_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, before)
