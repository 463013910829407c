"""Kafka over TLS with client certificates, against the local broker's TLS listener (a
throwaway CA made by scripts/services.sh): every Kafka client the project builds, and a
whole worker storing events through it."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest

from app.connections import kafka_admin, kafka_consumer, kafka_producer
from app.local_cluster import LocalCluster, capture_message
from app.settings import SettingsError, load_settings

pytestmark = pytest.mark.integration

TLS_HOSTS = os.environ.get("KAFKA_TLS_HOSTS", "127.0.0.1:19094")
TLS_DIR = Path(
    os.environ.get("KAFKA_TLS_DIR", Path(__file__).parents[2] / ".services" / "kafka" / "tls")
)


def b64(name: str) -> str:
    return base64.b64encode((TLS_DIR / name).read_bytes()).decode()


def tls_env(*, client_cert: bool = True) -> dict[str, str]:
    env = {"KAFKA_HOSTS": TLS_HOSTS, "KAFKA_TRUSTED_CERT_B64": b64("ca.pem")}
    if client_cert:
        env |= {"KAFKA_CLIENT_CERT_B64": b64("client.crt"),
                "KAFKA_CLIENT_CERT_KEY_B64": b64("client.key")}  # fmt: skip
    return env


def test_the_clients_speak_tls_with_a_client_certificate() -> None:
    settings = load_settings(**tls_env())
    topic = f"tls_{uuid.uuid4().hex[:8]}"
    admin = kafka_admin(settings, client_id="tls-test")
    try:
        from kafka.admin import NewTopic

        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    producer = kafka_producer(settings)
    producer.send(topic, b"over tls").get(timeout=30)
    producer.close()
    consumer = kafka_consumer(
        settings, auto_offset_reset="earliest", consumer_timeout_ms=10_000, group_id=None
    )
    consumer.subscribe([topic])
    values = [m.value for m in consumer]
    consumer.close()
    assert values == [b"over tls"]


def test_without_the_client_certificate_the_broker_refuses() -> None:
    from kafka.errors import KafkaTimeoutError

    settings = load_settings(**tls_env(client_cert=False))
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        kafka_admin(settings, client_id="tls-test").close()


def test_half_a_certificate_pair_or_bad_base64_is_a_settings_error() -> None:
    from app.kafka_tls import ssl_context

    env = tls_env()
    del env["KAFKA_CLIENT_CERT_KEY_B64"]
    with pytest.raises(SettingsError, match="go together"):
        ssl_context(load_settings(**env))
    with pytest.raises(SettingsError, match="KAFKA_TRUSTED_CERT_B64 must be Base64 of a PEM"):
        ssl_context(load_settings(KAFKA_TRUSTED_CERT_B64="bm90IGEgY2VydA=="))


async def test_a_worker_stores_events_through_tls() -> None:
    run = uuid.uuid4().hex[:8]
    async with LocalCluster(
        run_id=run,
        input_topic=f"tls_{run}_input",
        events_store="postgres",
        env={**os.environ, **tls_env()},
    ) as cluster:
        await cluster.produce(
            [capture_message(team_id=1, distinct_id=f"{run}-{i}", index=i) for i in range(20)]
        )
        await cluster.wait_for_events(20, timeout=60)
