"""mmstream never consumes what it writes: such alert topics are refused at start, and a
consumed message carrying our provenance headers is a dead letter ("own output")."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mmstream.analyses.registry import Registry
from mmstream.feeders import igwn_alert, produce_heartbeats
from mmstream.formats.headers import headers_dict
from mmstream.formats.results import decode_result
from mmstream.model import NS_PER_S
from mmstream.stream.messages import headers_of
from mmstream.times import format_utc, now_ns
from tests.integration.harness import read_messages, running_service

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "alert_topic",
    ["mmstream.notices.neutrino_llh", "mmstream.deadletter", "mmstream.results.x",
     "detector.icecube.events", "^mmstream\\..*"],
)  # fmt: skip
def test_a_topic_we_write_is_refused_as_an_alert_input(
    alert_topic: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    cfg = tmp_path / "mmstream.toml"
    cfg.write_text(f'alert_topics = ["{alert_topic.replace(chr(92), chr(92) * 2)}"]\n'
                   f'[kafka]\n"bootstrap.servers" = "{kafka_bootstrap}"\n')  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "mmstream.cli", "run", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "re-trigger analyses on their own output" in done.stderr


def test_our_own_notice_relayed_back_is_a_dead_letter(kafka_bootstrap: str) -> None:
    registry = Registry([Registry.discover().get("neutrino_llh"),
                         Registry.discover().get("temporal_coincidence")])  # fmt: skip
    tag = uuid.uuid4().hex[:6]
    relay = f"gcn.notices.icecube.relay{tag}"
    with running_service(kafka_bootstrap, registry=registry,
                         alert_topics=(f"igwn.gwalert.own{tag}", relay),
                         analyses={"neutrino_llh": {"params": {"n_trials": 20}}}) as h:  # fmt: skip
        end = now_ns()  # heartbeats over the window: the likelihood test wants livetime
        produce_heartbeats(h.producer, h.settings.status_topic(h.detector), h.detector,
                           end - 1800 * NS_PER_S, end)  # fmt: skip
        t = now_ns() - 900 * NS_PER_S
        h.produce(h.alert_topic, igwn_alert("S000777x", time_ns=t, ra_deg=1.0, dec_deg=2.0))
        (notice,) = read_messages(h.settings, h.settings.notice_topic("neutrino_llh"), 1)
        # Someone relays our IceCube-style notice, headers and all, to a GCN topic we follow.
        h.produce(relay, notice.value(), headers=headers_of(notice))
        (dead,) = read_messages(h.settings, h.settings.deadletter_topic, 1)
        reason = headers_dict(headers_of(dead))["mmstream-dlq-reason"].decode()
        assert reason.startswith("own output") and dead.value() == notice.value()
        # Sentinel: a real GCN notice after it is processed; nothing was run on the relay.
        h.produce(relay, b'{"mission": "IceCube", "id": ["real"], "trigger_time": "'
                  + format_utc(t).encode() + b'", '
                  b'"ra": 1.0, "dec": 2.0, "ra_dec_error": 1.0}')  # fmt: skip
        # In partition order the relay comes first: had it run, it would be among the two.
        results = read_messages(h.settings, h.settings.result_topic("temporal_coincidence"), 2)
        alerts = [decode_result(m.value())["alert"]["alert_id"] for m in results]
        assert sorted(alerts) == ["IceCube-real", "S000777x"], alerts
