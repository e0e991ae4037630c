"""Every config rule refuses a bad file with a message that names the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from streamchaos.cli import main
from streamchaos.config import config_from_dict, load_config
from streamchaos.errors import ConfigError

GOOD = {
    "experiment": "exp",
    "routes": [{"source": "features.a", "shadow": "features.a.shadow"}],
}


def with_changes(**changes):
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data.update(changes)
    return data


def refused(data, env=None) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, env=env or {})
    return str(info.value)


def test_good_config_and_defaults():
    cfg = config_from_dict(GOOD, env={})
    assert cfg.group_id == "streamchaos.exp"
    assert cfg.safety.shadow_suffix == ".shadow"
    assert cfg.bridge.lineage_header is None  # lineage goes to the ledger
    assert cfg.metrics.bind == "127.0.0.1"


@pytest.mark.parametrize(
    ("routes", "field", "words"),
    [
        ([{"source": "a", "shadow": "a"}], "routes[0].shadow", "is the source of routes[0]"),
        (
            [{"source": "a", "shadow": "a.shadow"}, {"source": "b", "shadow": "a"}],
            "routes[1].shadow",
            "is the source of routes[0]",
        ),
        ([{"source": "a", "shadow": "a.copy"}], "routes[0].shadow", "does not end with"),
        (
            [{"source": "a", "shadow": "x.shadow"}, {"source": "b", "shadow": "x.shadow"}],
            "routes[1].shadow",
            "is already the shadow of routes[0]",
        ),
        (
            [{"source": "a", "shadow": "a.shadow"}, {"source": "a", "shadow": "b.shadow"}],
            "routes[1].source",
            "already the source",
        ),
    ],
)
def test_shadow_only_rules(routes, field, words):
    message = refused(with_changes(routes=routes))
    assert message.startswith(f"{field}: ") and words in message


def test_custom_shadow_suffix():
    data = with_changes(
        routes=[{"source": "a", "shadow": "a-chaos"}], safety={"shadow_suffix": "-chaos"}
    )
    assert config_from_dict(data, env={}).routes[0].shadow == "a-chaos"
    assert "does not end with safety.shadow_suffix '-chaos'" in refused(
        with_changes(safety={"shadow_suffix": "-chaos"})
    )


def test_shadow_equal_to_suffix_refused():
    assert "routes[0].shadow" in refused(
        with_changes(routes=[{"source": "a", "shadow": ".shadow"}])
    )


def test_ledger_topic_may_not_be_a_source():
    assert refused(with_changes(ledger={"topic": "features.a"})).startswith("ledger.topic:")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"experimnt": "x"}, "experimnt"),
        ({"routes": [{"source": "a", "shadow": "a.shadow", "fromat": "avro"}]}, "routes[0].fromat"),
        ({"routes": [{"source": "a", "shadow": "a.shadow", "format": "xml"}]}, "routes[0].format"),
        ({"routes": []}, "routes"),
        ({"metrics": {"port": 70000}}, "metrics.port"),
        ({"kafka": {"bootstrap": "x"}}, "kafka.bootstrap"),
        ({"bridge": {"commit_interval": "soon"}}, "bridge.commit_interval"),
        ({"delivery": "exactly-twice"}, "delivery"),
        ({"experiment": "has space"}, "experiment"),
    ],
)
def test_bad_fields_are_named(changes, field):
    assert refused(with_changes(**changes)).startswith(f"{field}: ")


def test_env_overrides_connection_settings():
    cfg = config_from_dict(
        GOOD, env={"KAFKA_BOOTSTRAP_SERVERS": "10.0.0.1:9999", "SCHEMA_REGISTRY_URL": "http://r"}
    )
    assert cfg.kafka.bootstrap_servers == "10.0.0.1:9999"
    assert cfg.schema_registry.url == "http://r"


def test_durations_accept_units():
    cfg = config_from_dict(with_changes(bridge={"commit_interval": "250ms"}), env={})
    assert cfg.bridge.commit_interval == 0.25


def test_load_config_reports_yaml_position(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("experiment: x\nroutes: [\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_validate_cli_exit_codes(tmp_path: Path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    assert main(["validate", "-c", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_changes(routes=[{"source": "a", "shadow": "a"}])))
    assert main(["validate", "-c", str(bad)]) == 2
    assert "routes[0].shadow" in capsys.readouterr().err


def test_example_configs_validate():
    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(root.glob("*.yaml"))
    assert files
    for path in files:
        if path.name.startswith(("prometheus", "alert", "kubernetes", "sweep")):  # not experiments
            continue
        load_config(path, env={})


def test_value_faults_need_a_decodable_format():
    fault = {"type": "corrupt", "mode": "nan", "fields": ["x"]}
    message = refused(
        with_changes(routes=[{"source": "a", "shadow": "a.shadow", "faults": [fault]}])
    )
    assert message.startswith("routes[0].faults[0].type: corrupt reads record values")


def test_avro_faults_need_a_registry_or_schema_file(tmp_path):
    route = {
        "source": "a",
        "shadow": "a.shadow",
        "format": "avro",
        "faults": [{"type": "schema_break", "mode": "bad_magic"}],
    }
    assert refused(with_changes(routes=[route])).startswith("routes[0].format: avro faults need")
    assert config_from_dict(with_changes(routes=[route]), env={"SCHEMA_REGISTRY_URL": "http://r"})
    missing = {**route, "schema_file": str(tmp_path / "nope.avsc")}
    assert "routes[0].schema_file" in refused(with_changes(routes=[missing]))


def test_contract_break_needs_a_field():
    route = {
        "source": "a",
        "shadow": "a.shadow",
        "format": "json",
        "faults": [{"type": "schema_break", "mode": "rename_field"}],
    }
    assert "needs a field" in refused(with_changes(routes=[route]))


SASL = {
    "protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "PLAIN",
    "sasl_username": "alice",
    "sasl_password": {"env": "SC_TEST_PASSWORD"},
}


def test_secrets_are_never_inline():
    kafka = {"consumer": {"sasl.password": "hunter2"}}
    message = refused(with_changes(kafka=kafka))
    assert message.startswith("kafka.consumer.sasl.password: secrets come from")
    assert "hunter2" not in message
    assert refused(
        with_changes(kafka={"security": {**SASL, "sasl_password": "hunter2"}})
    ).startswith("kafka.security.sasl_password")


def test_sasl_needs_its_fields():
    security = {"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}
    assert refused(with_changes(kafka={"security": security})).startswith(
        "kafka.security.sasl_username: required"
    )


def test_secret_from_env_or_file(tmp_path, monkeypatch):
    from streamchaos.kafkaconf import consumer_conf

    cfg = config_from_dict(with_changes(kafka={"security": SASL}), env={})
    with pytest.raises(
        ConfigError,
        match=r"kafka\.security\.sasl_password: environment variable SC_TEST_PASSWORD is not set",
    ):
        consumer_conf(cfg)
    monkeypatch.setenv("SC_TEST_PASSWORD", "s3cr3t-from-env")
    assert consumer_conf(cfg)["sasl.password"] == "s3cr3t-from-env"
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t-from-file\n")
    security = {**SASL, "sasl_password": {"file": str(secret)}}
    cfg = config_from_dict(with_changes(kafka={"security": security}), env={})
    conf = consumer_conf(cfg)
    assert conf["sasl.password"] == "s3cr3t-from-file" and conf["sasl.username"] == "alice"
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in cfg.model_dump_json()


def test_validate_checks_secrets_without_printing_them(tmp_path, monkeypatch, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(with_changes(kafka={"security": SASL})))
    assert main(["validate", "-c", str(path)]) == 2
    assert "SC_TEST_PASSWORD is not set" in capsys.readouterr().err
    monkeypatch.setenv("SC_TEST_PASSWORD", "s3cr3t-value")
    assert main(["validate", "-c", str(path)]) == 0
    captured = capsys.readouterr()
    assert "s3cr3t-value" not in captured.out + captured.err


@pytest.mark.parametrize(
    ("changes", "start"),
    [
        ({"routes": [{"source": "^features.*", "shadow": "x.shadow"}]}, "routes[0].shadow:"),
        ({"ledger": {"topic": "bad topic"}}, "ledger.topic:"),
        ({"kafka": {"producer": {"acks": 1}}}, "kafka.producer.acks:"),
        (
            {"kafka": {"producer": {"enable.idempotence": False}}},
            "kafka.producer.enable.idempotence:",
        ),
        (
            {"kafka": {"producer": {"delivery.report.only.error": True}}},
            "kafka.producer.delivery.report.only.error:",
        ),
    ],
)
def test_settings_that_would_break_the_invariants(changes, start):
    assert refused(with_changes(**changes)).startswith(start)


def test_fault_subject_may_not_be_a_source_subject_and_wire_breaks_need_avro():
    fault = {
        "type": "schema_break",
        "mode": "drop_field",
        "field": "x",
        "subject": "features.a-value",
    }
    route = {
        "source": "features.a",
        "shadow": "features.a.shadow",
        "format": "avro",
        "faults": [fault],
    }
    data = with_changes(routes=[route], schema_registry={"url": "http://r"})
    assert refused(data).startswith("routes[0].faults[0].subject:")
    route = {**route, "format": "json", "faults": [{"type": "schema_break"}]}
    assert refused(with_changes(routes=[route])).startswith(
        "routes[0].faults[0].type: schema_break needs format avro"
    )


def test_ramp_without_a_shape_is_refused():
    fault = {"type": "drop", "schedule": {"ramp": "2m"}}
    route = {"source": "a", "shadow": "a.shadow", "faults": [fault]}
    assert "ramp needs shape linear or sigmoid" in refused(with_changes(routes=[route]))
