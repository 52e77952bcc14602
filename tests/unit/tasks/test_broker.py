"""Workers and publishers pick the client-reusing Redis transport for plain redis:// brokers
only."""

from __future__ import annotations

from models.config import load_settings
from tasks.broker import TRANSPORT
from tasks.dispatch import Publisher
from workers.app import celery_config


def config_for(broker_url: str) -> dict[str, object]:
    return celery_config(load_settings({}, overrides={"celery_broker_url": broker_url}))


def test_a_plain_redis_broker_uses_the_client_reusing_transport() -> None:
    assert config_for("redis://127.0.0.1:6379/11")["broker_transport"] == TRANSPORT


def test_tls_and_sentinel_brokers_keep_kombus_own_transport() -> None:
    for url in ("rediss://127.0.0.1:6380/0", "sentinel://127.0.0.1:26379/0"):
        assert "broker_transport" not in config_for(url)


def test_the_apis_publisher_uses_it_too() -> None:
    publisher = Publisher.for_broker("redis://127.0.0.1:6379/11", celery_metrics=False)
    assert publisher._app.conf.broker_transport == TRANSPORT


def test_the_kombu_methods_the_transport_overrides_keep_their_signatures() -> None:
    """tasks.broker.Channel overrides kombu's Redis Channel._create_client and _get_pool
    (private methods): an upgrade that changes them must fail here, not in production."""
    import inspect

    from kombu.transport import redis as kombu_redis

    for method in (kombu_redis.Channel._create_client, kombu_redis.Channel._get_pool):
        parameters = inspect.signature(method).parameters
        assert list(parameters) == ["self", "asynchronous"]
        assert parameters["asynchronous"].default is False
