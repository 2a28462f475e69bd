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

from tests.integration.harness import start_mmstream, stop_process

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


def test_dashboard_in_headless_chromium_after_the_demo(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    chromium = _chromium()
    log = tmp_path / "demo.log"
    demo = start_mmstream("demo", "--bootstrap", kafka_bootstrap, log=log,
                          env={**os.environ, "MMSTREAM_HTTP_PORT": "0"})  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        found = None
        while found is None:
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
            found = re.search(r"\(this alert: (http://\S+/alert/(\S+))\);", log.read_text())
        alert_url, alert_id = found.group(1), found.group(2)
        base = alert_url.split("/alert/")[0] + "/"

        index = _browser(chromium, "--dump-dom", base)
        assert index.returncode == 0, index.stderr
        assert alert_id in index.stdout and "icecube" in index.stdout

        page = _browser(chromium, "--dump-dom", alert_url)
        assert page.returncode == 0, page.stderr
        dom = page.stdout
        assert f"alert {alert_id}" in dom
        for analysis in ("temporal_coincidence", "spacetime_coincidence"):
            assert analysis in dom
        assert "icecube-planted-" in dom  # the planted event, named by a result
        src = re.search(r'<img alt="sky map" src="([^"]+)"', dom)
        assert src is not None, "no sky map on the page"
        with urllib.request.urlopen(base + src.group(1).lstrip("/"), timeout=60) as r:
            assert r.headers["Content-Type"] == "image/png"
            assert r.read().startswith(b"\x89PNG")

        shot = tmp_path / "dashboard-alert.png"
        out = _browser(chromium, f"--screenshot={shot}", "--window-size=1280,1400", alert_url)
        assert out.returncode == 0 and shot.exists(), out.stderr
        pixels = image.imread(str(shot))[:, :, :3]
        colours = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
        assert len(colours) > 500, "the screenshot has no picture in it"  # the sky map
        if target := os.environ.get("MMSTREAM_SCREENSHOT"):
            shutil.copy(shot, target)
        print(f"screenshot: {shot} ({len(colours)} colours)")
    finally:
        stop_process(demo, signal.SIGINT)  # Ctrl-C, as the demo tells its user
