"""The stall watchdog fires once for a call that outlives its limit, never for a quick one."""

from __future__ import annotations

import time

from mmstream.stream.watchdog import StallWatch


def test_a_stalled_call_fires_once_and_a_quick_one_never() -> None:
    fired: list[tuple[str, float]] = []
    watch = StallWatch(0.2, lambda call, elapsed: fired.append((call, elapsed)))
    try:
        for _ in range(5):
            with watch.guard("quick"):
                time.sleep(0.01)
        time.sleep(0.3)
        assert fired == []
        with watch.guard("send_offsets_to_transaction"):
            time.sleep(0.8)
        assert [call for call, _ in fired] == ["send_offsets_to_transaction"]
        assert fired[0][1] > 0.2
    finally:
        watch.close()


def test_no_call_in_progress_means_no_stall() -> None:
    fired: list[str] = []
    watch = StallWatch(0.1, lambda call, elapsed: fired.append(call))
    try:
        with watch.guard("x"):
            pass
        time.sleep(0.5)
        assert fired == []
    finally:
        watch.close()


def test_restart_process_runs_the_same_command_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    script = tmp_path / "stalls.py"
    script.write_text(
        "import os, sys, time\n"
        "from mmstream.stream.watchdog import StallWatch, restart_process\n"
        "if os.environ.get('ROUND') == '2':\n"
        "    print('restarted with', sys.argv[1:]); sys.exit(0)\n"
        "os.environ['ROUND'] = '2'\n"
        "watch = StallWatch(0.2, restart_process)\n"
        "with watch.guard('send_offsets_to_transaction'):\n"
        "    time.sleep(30)\n"
    )
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, str(script), "run", "--config", "x.toml"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "restarted with ['run', '--config', 'x.toml']" in out.stdout
    assert "stalled" in out.stdout + out.stderr
    assert time.monotonic() - started < 20, "the stalled call was not cut short"
