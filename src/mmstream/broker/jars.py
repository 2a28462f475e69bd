"""Kafka's jars from Maven Central, resolved once into a cache outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from mmstream.errors import BrokerError

KAFKA_VERSION = "4.1.1"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"


def cache_dir() -> Path:
    """Where jars are cached: $MMSTREAM_CACHE, else $XDG_CACHE_HOME/mmstream, else ~/.cache."""
    if env := os.environ.get("MMSTREAM_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmstream"


def require_tool(tool: str, hint: str) -> str:
    """The path of ``tool``, or a BrokerError saying how to install it."""
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"`{tool}` was not found on PATH; {hint}")
    return path


def resolve_jars(version: str = KAFKA_VERSION, cache: Path | None = None) -> Path:
    """Return a folder holding the broker's jars, resolving them with Maven on first use."""
    lib = (cache or cache_dir()) / f"kafka-{version}" / "lib"
    marker = lib / ".complete"
    if marker.exists():
        return lib
    mvn = require_tool("mvn", "install Maven (Debian: `apt-get install maven`) to fetch Kafka")
    require_tool("java", "install a JDK 17+ (Debian: `apt-get install openjdk-17-jre-headless`)")
    lib.mkdir(parents=True, exist_ok=True)
    pom = resources.files("mmstream.broker").joinpath("pom.xml")
    with resources.as_file(pom) as pom_path:
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom_path),
            f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-Dkafka.version={version}",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={lib}",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise BrokerError(f"Maven could not resolve Kafka {version}:\n{tail}")
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise BrokerError(f"Maven finished but no kafka_2.13 jar is in {lib}")
    marker.write_text(version)
    return lib
