"""docker-compose.yml's parts agree (fast, no engine); tests/containers/test_compose.py
runs the stack for real."""

from __future__ import annotations

from pathlib import Path

import yaml

from streamchaos.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_present():
    assert {"kafka", "schema-registry", "streamchaos", "prometheus"} <= set(compose()["services"])


def test_bridge_config_is_mounted_where_the_command_reads_it():
    bridge = compose()["services"]["streamchaos"]
    config_path = bridge["command"][bridge["command"].index("-c") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in bridge["volumes"]}
    assert config_path in mounts
    host_file = ROOT / mounts[config_path]
    cfg = load_config(host_file, env=bridge["environment"])
    assert cfg.kafka.bootstrap_servers == bridge["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    published = {p.rsplit(":", 1)[1] for p in bridge["ports"]}
    assert str(cfg.metrics.port) in published
    assert cfg.metrics.bind == "0.0.0.0", "inside a container the metrics port must listen"


def test_bridge_reaches_kafka_on_an_advertised_listener():
    services = compose()["services"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    hostports = {item.split("://")[1] for item in advertised.split(",")}
    assert services["streamchaos"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] in hostports
    registry = services["streamchaos"]["environment"]["SCHEMA_REGISTRY_URL"]
    published = services["schema-registry"]["ports"][0].rsplit(":", 1)[1]
    assert f"//schema-registry:{published}/apis/ccompat/v7" in registry


def test_every_image_and_port_can_be_overridden():
    services = compose()["services"]
    for name, service in services.items():
        assert service["image"].startswith("${") and ":-" in service["image"], name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:${"), f"{name}: {port}"


def test_prometheus_scrapes_the_bridge_metrics_port():
    services = compose()["services"]
    mount = next(v for v in services["prometheus"]["volumes"] if "prometheus.yml" in v)
    prom = yaml.safe_load((ROOT / mount.split(":")[0]).read_text())
    targets = [
        t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    ]
    cfg = load_config(ROOT / "configs/compose.yaml", env={})
    assert f"streamchaos:{cfg.metrics.port}" in targets


def test_dockerfile_entrypoint_matches_compose():
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["streamchaos"]' in text
    assert "USER " in text and "EXPOSE 9464" in text
    assert compose()["services"]["streamchaos"]["build"] == "."
    assert "ARG BASE=python:3.11-slim" in text and "FROM ${BASE}" in text


def manifests():
    return {
        d["kind"]: d for d in yaml.safe_load_all((ROOT / "configs/kubernetes.yaml").read_text())
    }


def test_kubernetes_manifest_agrees_with_the_image_and_the_bridge(monkeypatch):
    docs = manifests()
    assert set(docs) == {"ConfigMap", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    args = container["args"]
    from streamchaos.cli import build_parser

    parsed = build_parser().parse_args(args)  # the image's entry point is `streamchaos`
    assert parsed.command == "run" and parsed.log_format == "json"
    config_path = args[args.index("-c") + 1]
    [mount] = container["volumeMounts"]
    assert config_path == f"{mount['mountPath']}/experiment.yaml"
    experiment = docs["ConfigMap"]["data"]["experiment.yaml"]
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "not-used")
    from streamchaos.config import config_from_dict

    cfg = config_from_dict(yaml.safe_load(experiment), env={})
    assert cfg.kafka.security.sasl_password.env == "KAFKA_SASL_PASSWORD"
    env_names = {e["name"] for e in container["env"]}
    assert "KAFKA_SASL_PASSWORD" in env_names
    [port] = container["ports"]
    assert port["containerPort"] == cfg.metrics.port and cfg.metrics.bind == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["terminationGracePeriodSeconds"] > cfg.bridge.shutdown_timeout
    docker = (ROOT / "Dockerfile").read_text()
    assert f"USER {pod['securityContext']['runAsUser']}" in docker
    assert docs["Service"]["spec"]["ports"][0]["port"] == cfg.metrics.port
