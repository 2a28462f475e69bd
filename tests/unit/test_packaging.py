"""The wheel a user installs (not the editable checkout) carries every data file the code
reads at run time: a missing historical schema once broke decoding of old detector events."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_every_schema_and_broker_file(tmp_path: Path) -> None:
    # From a pristine copy: an editable install's *.egg-info/SOURCES.txt would smuggle in
    # files that package-data forgets, and hide the bug.
    src = tmp_path / "src-copy"
    skip = shutil.ignore_patterns("*.egg-info", "build", ".venv*", ".git", "__pycache__", "*.whl")
    shutil.copytree(ROOT, src, symlinks=True, ignore=skip)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("mmstream-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = ROOT / "schemas"
    wanted = {f"mmstream/schemas/{p.relative_to(schemas)}" for p in schemas.rglob("*.avsc")}
    wanted |= {"mmstream/broker/pom.xml", "mmstream/broker/log4j2.properties", "mmstream/py.typed"}
    assert "mmstream/schemas/history/detector_event.v1.avsc" in wanted
    assert wanted <= names, sorted(wanted - names)
