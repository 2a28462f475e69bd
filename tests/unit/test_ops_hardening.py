"""What a hostile visitor and an operator found (issue 18, part 5): idle connections are
closed, HEAD answers, ids cannot steer links elsewhere, titles are text, results are counted
by their status, and the ledger and the archive are owner-only."""

from __future__ import annotations

import http.client
import socket
import stat
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from mmstream.ledger.store import Ledger, sqlite_url
from mmstream.model import NS_PER_S, Alert, AlertType, Circle, Role, SourceRef
from mmstream.ops import server as ops_server
from mmstream.ops.observer import Observer
from mmstream.ops.pages import index_page
from mmstream.ops.skyplot import render_skymap_png
from mmstream.ops.state import DashboardState
from mmstream.stream.archive import ArchivedMessage, RawArchive
from mmstream.stream.events import Delivered

ALERT = Alert("a/../b$\\alpha$", "1", AlertType.INITIAL, Role.OBSERVATION, "Swift",
              1_800_000_000 * NS_PER_S, None, Circle(10.0, 20.0, 1.0, 0.9),
              SourceRef("t", 0, 0, "x"))  # fmt: skip


def _server(monkeypatch: pytest.MonkeyPatch) -> ops_server.OpsServer:
    monkeypatch.setattr(ops_server, "IDLE_TIMEOUT_S", 0.5)
    state = DashboardState(["icecube"])
    state.alert_seen(ALERT, "decoded")
    health = ops_server.Health(lambda: (True, "ok"), lambda: (True, "ok"))
    srv = ops_server.OpsServer("127.0.0.1", 0, state, health)
    srv.start()
    return srv


def test_an_idle_connection_is_closed_and_head_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    srv = _server(monkeypatch)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as idle:
            assert idle.recv(1) == b"", "the server closes a connection that sends nothing"
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("HEAD", "/healthz")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b""
        assert int(response.getheader("Content-Length") or 0) > 0
    finally:
        srv.stop()


def test_alert_links_quote_the_whole_id() -> None:
    state = DashboardState(["icecube"])
    state.alert_seen(ALERT, "decoded")
    page = index_page(state).decode()
    assert 'href="/alert/a%2F..%2Fb%24%5Calpha%24"' in page
    assert 'href="/alert/a/' not in page


def test_a_title_with_mathtext_renders_as_text() -> None:
    png = render_skymap_png(ALERT.localization, [], f"{ALERT.alert_id} $\\foo$ {{")
    assert png.startswith(b"\x89PNG")


def test_published_results_are_counted_by_their_status() -> None:
    from mmstream.stream.runs import Retraction

    class _Spec:
        name, label = "temporal_coincidence", "temporal_coincidence@1.0.0"

    obs = Observer(DashboardState([]))
    retraction = Retraction(ALERT, _Spec(), None, "old")  # type: ignore[arg-type]
    obs.retracted(retraction)
    labels = {"analysis": "temporal_coincidence@1.0.0", "status": "RETRACTED"}
    before = REGISTRY.get_sample_value("mmstream_results_published_total", labels) or 0.0
    obs.published(ALERT.alert_id, [Delivered("t", "t", 0, 1, "result", labels["analysis"],
                                             retraction.result_id, "old")], 0.01, None)  # fmt: skip
    assert REGISTRY.get_sample_value("mmstream_results_published_total", labels) == before + 1


def test_the_ledger_and_the_archive_are_owner_only(tmp_path: Path) -> None:
    ledger = Ledger(sqlite_url(tmp_path / "data"))
    ledger.engine.dispose()
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "ledger.sqlite3").stat().st_mode) == 0o600
    archive = RawArchive(tmp_path / "archive", "test")
    path = archive.append(ArchivedMessage("igwn.gwalert", 0, 0, (1, 1_764_547_200_000), None,
                                          b"value", []))  # fmt: skip
    archive.close()
    for p in (tmp_path / "archive", path.parent, path.parent.parent):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
    for p in (path, path.with_name(path.name + ".sha256")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_a_run_left_pending_is_settled_when_its_result_is_read_back(tmp_path: Path) -> None:
    """A process killed between the Kafka commit and the ledger write leaves its run pending;
    the next start reads the result back from Kafka and settles it."""
    from mmstream.analyses.registry import Registry
    from mmstream.ledger.recorder import Recorder
    from mmstream.stream.runs import Retraction

    ledger = Ledger(sqlite_url(tmp_path))
    spec = Registry.discover().get("temporal_coincidence")
    retraction = Retraction(ALERT, spec, spec.validate_params({}), None)
    Recorder(ledger, "before-the-kill").retracted(retraction)  # written, never settled
    run = ledger.run(retraction.result_id)
    assert run is not None and run["status"] == "pending"
    after = Recorder(ledger, "after-the-restart")
    after.result_seen("someone-else", "result", "t", 0, 1, None)  # not ours: ignored
    after.result_seen(retraction.result_id, "result", "mmstream.results.t", 0, 7, None)
    assert after.writes is not None and after.writes.drain(10)  # settled on the ledger's thread
    run = ledger.run(retraction.result_id)
    assert run is not None and run["status"] == "retracted"
    assert [(o["topic"], o["offset"]) for o in ledger.outputs(retraction.result_id)] == [
        ("mmstream.results.t", 7)
    ]
