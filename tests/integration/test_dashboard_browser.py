"""The dashboard in a real browser: headless Chromium loads it after `mmstream demo`, finds the
alert, its results and the sky-map image, and saves a screenshot."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from tests.integration.harness import start_mmstream, stop_process, wait_until

pytestmark = pytest.mark.integration


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/test installs it as root)")
        pytest.skip("chromium not installed (Debian package chromium)")
    return found


def _browser(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--virtual-time-budget=5000", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _demo(bootstrap: str, log: Path, data: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """`mmstream demo` serving its dashboard: the process, the dashboard and the alert id."""
    start = log.stat().st_size if log.exists() else 0
    env = {**os.environ, "MMSTREAM_HTTP_PORT": "0", "MMSTREAM_DATA_DIR": str(data)}
    demo = start_mmstream("demo", "--bootstrap", bootstrap, log=log, env=env)
    deadline = time.monotonic() + 180
    found = None
    while found is None:
        assert demo.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
        found = re.search(r"\(this alert: (http://\S+/alert/(\S+))\);", log.read_text()[start:])
    return demo, found.group(1).split("/alert/")[0] + "/", found.group(2)


def _colours(shot: Path) -> int:
    pixels = image.imread(str(shot))[:, :, :3]
    return len(np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0))


def _shot(chromium: str, url: str, shot: Path) -> int:
    """A screenshot of the page; how many colours it has (a plot or a map has hundreds)."""
    out = _browser(chromium, f"--screenshot={shot}", "--window-size=1280,1400", url)
    assert out.returncode == 0 and shot.exists(), out.stderr
    if target := os.environ.get("MMSTREAM_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(target) / shot.name)
    return _colours(shot)


def _dom(chromium: str, url: str) -> str:
    out = _browser(chromium, "--dump-dom", url)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_dashboard_in_headless_chromium_after_the_demo(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    chromium = _chromium()
    log, data = tmp_path / "demo.log", tmp_path / "data"
    demo, base, alert_id = _demo(kafka_bootstrap, log, data)
    alert_url = f"{base}alert/{alert_id}"
    try:
        index = _dom(chromium, base)
        assert alert_id in index and "icecube" in index
        dom = _dom(chromium, alert_url)
        assert f"alert {alert_id}" in dom
        for analysis in ("temporal_coincidence", "spacetime_coincidence"):
            assert analysis in dom
        assert "icecube-planted-" in dom  # the planted event, named by a result
        src = re.search(r'<img alt="sky map" src="([^"]+)"', dom)
        assert src is not None, "no sky map on the page"
        with urllib.request.urlopen(base + src.group(1).lstrip("/"), timeout=60) as r:
            assert r.headers["Content-Type"] == "image/png"
            assert r.read().startswith(b"\x89PNG")
        colours = _shot(chromium, alert_url, tmp_path / "dashboard-alert.png")
        assert colours > 500, "the alert page's screenshot has no sky map in it"

        # the console: each page with what the demo made
        jobs = _dom(chromium, base + "jobs")
        assert "Waiting and running (0)" in jobs and "published" in jobs and alert_id in jobs
        dead = _dom(chromium, base + "deadletters")
        assert "igwn.gwalert[0]@" in dead and "mmstream deadletter requeue" in dead
        link = re.search(r'href="(/deadletter/\d+/\d+)"', dead)
        assert link is not None
        with urllib.request.urlopen(base + link.group(1).lstrip("/"), timeout=60) as r:
            assert r.read().startswith(b"not an alert (")  # the original, byte-exact

        def livetime_shown() -> bool:
            return "shutter 3 closed" in _dom(chromium, base + "livetime")

        wait_until(livetime_shown, "the livetime timeline with the shutter's exclusion", 60)
        latency = _dom(chromium, base + "latency")
        assert "temporal_coincidence" in latency and 'src="/plot/latency.png"' in latency
        for page, least in (("jobs", 20), ("deadletters", 20), ("livetime", 20),
                            ("latency", 200)):  # fmt: skip
            colours = _shot(chromium, base + page, tmp_path / f"console-{page}.png")
            assert colours > least, f"the {page} page's screenshot is blank ({colours} colours)"
    finally:
        stop_process(demo, signal.SIGINT)  # Ctrl-C, as the demo tells its user

    # a restart: the alerts before it are still listed, read back from the ledger
    demo, base, second = _demo(kafka_bootstrap, log, data)
    try:
        assert second != alert_id

        def both_listed() -> bool:
            index = _dom(chromium, base)
            return alert_id in index and second in index

        wait_until(both_listed, "the alert from before the restart listed again", 60)
        dom = _dom(chromium, f"{base}alert/{alert_id}")
        assert "temporal_coincidence" in dom and "COMPLETED" in dom
        with urllib.request.urlopen(f"{base}skymap/{alert_id}.png", timeout=60) as r:
            assert r.read().startswith(b"\x89PNG")
        assert _shot(chromium, f"{base}alert/{alert_id}", tmp_path / "restored.png") > 500
    finally:
        stop_process(demo, signal.SIGINT)
