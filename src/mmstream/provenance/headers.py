"""Identity and code of a result: its deterministic ids, and the code string it carries.

The headers themselves are encoded and parsed in :mod:`mmstream.formats.headers`.
"""

from __future__ import annotations

import subprocess
import uuid
from functools import cache
from pathlib import Path

from mmstream import __version__

# Fixed namespace for result ids: uuid5(NAMESPACE_URL, "mmstream:result").
RESULT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "mmstream:result")


def result_id(
    analysis_label: str, alert_id: str, revision: str, role: str = "observation"
) -> uuid.UUID:
    """Deterministic: a re-run on the same alert revision gives the same id. The role is
    part of the identity (a test notice may share its id and revision with the real one);
    observations keep the id they always had."""
    name = f"{analysis_label}\n{alert_id}\n{revision}"
    return uuid.uuid5(RESULT_NAMESPACE, name if role == "observation" else f"{name}\nrole={role}")


def notice_id(rid: uuid.UUID) -> uuid.UUID:
    """The ``_id`` of the JSON notice published beside result ``rid``: every message has its
    own id (hop-client's rule), derived from the result's so that it is deterministic too."""
    return uuid.uuid5(rid, "notice")


@cache
def git_commit() -> str | None:
    """The commit of the source tree mmstream runs from, where it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    ).stdout.strip()
    return f"{commit}{'-dirty' if dirty else ''}"


def code_string(
    handler_sha256: str, handler_distribution: str | None = None, setup_sha256: str | None = None
) -> str:
    """``mmstream==X git=<commit> handler-sha256=<hex> [handler-dist=<name>==<version>]
    [setup-sha256=<hex>]``."""
    parts = [f"mmstream=={__version__}"]
    if (commit := git_commit()) is not None:
        parts.append(f"git={commit}")
    parts.append(f"handler-sha256={handler_sha256}")
    if handler_distribution is not None:
        parts.append(f"handler-dist={handler_distribution}")
    if setup_sha256 is not None:
        parts.append(f"setup-sha256={setup_sha256}")
    return " ".join(parts)
