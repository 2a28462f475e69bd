import os
from pathlib import Path

import pytest

from mmstream.broker.jars import resolve_jars
from mmstream.broker.local import LocalKafka
from mmstream.config import load_settings
from mmstream.errors import BrokerError, ConfigError


def test_environment_beats_file_and_kafka_variables_map_to_client_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "mmstream.toml"
    cfg.write_text(
        'group_id = "from-file"\nlookback_s = 60\n[kafka]\n"bootstrap.servers" = "file:9092"\n'
    )
    monkeypatch.setenv("MMSTREAM_GROUP_ID", "from-env")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    s = load_settings(cfg)
    assert s.group_id == "from-env" and s.lookback_s == 60
    kafka = s.kafka_config()
    assert kafka["bootstrap.servers"] == "env:9092"
    assert kafka["sasl.mechanism"] == "SCRAM-SHA-256"


def test_kafka_variables_follow_gcn_kafkas_underscore_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """gcn-kafka: after KAFKA_, ``___`` is ``_``, ``__`` is ``-``, ``_`` is ``.``."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("KAFKA_SOME__DASHED___UNDERSCORED_KEY", "x")
    monkeypatch.setenv("KAFKA_SASL_OAUTHBEARER_CLIENT_ID", "me")
    kafka = load_settings().kafka_config()
    assert kafka["some-dashed_underscored.key"] == "x"
    assert kafka["sasl.oauthbearer.client.id"] == "me"


def test_no_bootstrap_setting_is_an_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("KAFKA_")]:
        monkeypatch.delenv(key)
    with pytest.raises(ConfigError, match="no Kafka broker configured: set KAFKA_BOOTSTRAP"):
        load_settings().kafka_config()


def test_config_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("group_id = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="lookback_s"):
        load_settings(lookback_s="soon")


def test_missing_tools_give_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    with pytest.raises(BrokerError, match="`mvn` was not found"):
        resolve_jars("4.1.1", cache=tmp_path / "cache")


def test_status_of_a_broker_that_never_ran(tmp_path: Path) -> None:
    assert LocalKafka(tmp_path / "b").info() is None
    assert LocalKafka(tmp_path / "b").stop() is False


def test_a_cluster_id_starting_with_a_dash_still_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmstream.broker import local

    monkeypatch.setattr(local, "new_cluster_id", lambda: "-AbCdEfGhIjKlMnOpQrStUv")
    broker = LocalKafka(tmp_path / "dash")
    broker.directory.mkdir(parents=True)
    config = broker._write_properties(local.free_port(), local.free_port())
    broker._format(local.resolve_jars(), config)
    assert (
        "cluster.id=-AbCdEfGhIjKlMnOpQrStUv"
        in (broker.directory / "data" / "meta.properties").read_text()
    )


def test_an_analysis_another_package_installs_runs_only_once_enabled() -> None:
    """Installing a package must not start publishing a new public topic: analyses that other
    distributions' entry points bring are opt-in; mmstream's own and configured ones are on."""
    plain = load_settings(kafka={"bootstrap.servers": "x:9092"}).stream(opt_in=["theirs"])
    assert not plain.policy("theirs").enabled and plain.policy("temporal_coincidence").enabled
    chosen = load_settings(kafka={"bootstrap.servers": "x:9092"},
                           analyses={"theirs": {"enabled": True}}).stream(opt_in=["theirs"])  # fmt: skip
    assert chosen.policy("theirs").enabled
    off = load_settings(kafka={"bootstrap.servers": "x:9092"},
                        analyses={"temporal_coincidence": {"enabled": False}}).stream()  # fmt: skip
    assert not off.policy("temporal_coincidence").enabled
