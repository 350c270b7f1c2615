"""Read replicas (core/replicas.py): which database each serving read goes to, the lag limit, and
losing a replica. Against the real PostgreSQL: `stand_in_replica` (test_settings) is a second connection to
the test database, standing in for a replica where what matters is which connection a query used. The real
streaming replica (lag, kill) is exercised by tests/cluster/test_cluster.py."""

from __future__ import annotations

import socket

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections

from core import replicas
from recommendations.selectors import serving_config_clear
from tests.factories import EventFactory, ItemFactory, UserProfileFactory, topic

STAND_IN = "stand_in_replica"
# The mirror connection only sees committed rows: these tests commit, and the database is flushed after.
pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, STAND_IN])
URL = "/api/v1/recommendations/users/{}"


@pytest.fixture(autouse=True)
def _fresh_state():
    replicas._states.clear()
    serving_config_clear()
    yield
    replicas._states.clear()
    serving_config_clear()
    connections[STAND_IN].close()


@pytest.fixture
def with_replica(settings):
    settings.RECSYS_REPLICA_ALIASES = [STAND_IN]
    settings.RECSYS_REPLICA_MAX_LAG_SECONDS = 5
    settings.RECSYS_REPLICA_CHECK_SECONDS = 60
    return settings


@pytest.fixture
def replica_unreachable():
    """Points the stand-in at a closed port on this machine: every connection attempt is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = connections[STAND_IN]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(HOST="127.0.0.1", PORT=str(port))
    yield
    conn.close()
    conn.settings_dict.clear()
    conn.settings_dict.update(saved)


@pytest.fixture
def shop():
    shoes = [ItemFactory(external_id=f"shoe-{i}", embedding=topic(1, jitter=0.2, seed=i)) for i in range(5)]
    EventFactory(user_id="u1", item=shoes[0], event_type="purchase")
    UserProfileFactory(external_id="u1", embedding=topic(1))
    return shoes


class _Statements:
    """The SQL a connection ran (an execute wrapper: unlike CaptureQueriesContext, it never connects)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)


def _served(api, user_id: str = "u1") -> tuple[list[str], str, str]:
    """The answer's item ids, and the SQL each connection ran for it."""
    primary, replica = _Statements(), _Statements()
    with (
        connections[DEFAULT_DB_ALIAS].execute_wrapper(primary),
        connections[STAND_IN].execute_wrapper(replica),
    ):
        response = api.get(URL.format(user_id), {"limit": 10})
    assert response.status_code == 200, response.content
    return [i["id"] for i in response.json()["items"]], "\n".join(primary.sql), "\n".join(replica.sql)


def test_without_replicas_every_read_goes_to_the_primary(api, shop):
    ids, primary, replica = _served(api)
    assert ids and "shoe-0" not in ids  # bought: excluded, as always
    assert replica == ""
    assert "catalog_item" in primary and "recommendations_servedlist" in primary
    assert replicas.serving_alias() == DEFAULT_DB_ALIAS


def test_serving_reads_go_to_the_replica_and_the_user_context_and_log_to_the_primary(api, shop, with_replica):
    ids, primary, replica = _served(api)
    assert ids and "shoe-0" not in ids
    # retrieval, features and cards, profiles and promotions: the replica
    assert "embedding <=>" in replica and "FROM catalog_item i" in replica
    assert "recommendations_rerankprofile" in replica and "catalog_promotion" in replica
    # the user's own context (read-your-writes) and the served-list log: the primary, never the replica
    assert "interactions_userprofile" in primary and "interactions_userprofile" not in replica
    assert "INSERT INTO recommendations_servedlist" in primary and "servedlist" not in replica
    assert "embedding <=>" not in primary


def test_users_new_event_changes_their_next_answer_while_serving_from_the_replica(api, shop, with_replica):
    first, _, _ = _served(api)
    assert "shoe-1" in first
    EventFactory(user_id="u1", item=shop[1], event_type="purchase")
    second, _, _ = _served(api)
    assert "shoe-1" not in second  # just bought: the user context came from the primary


def test_writes_and_migrations_go_to_the_primary(with_replica):
    router = replicas.ReplicaRouter()
    with replicas.serving_reads() as alias:
        assert alias == STAND_IN
        assert router.db_for_read(None) == STAND_IN
        assert router.db_for_write(None) == DEFAULT_DB_ALIAS
        with replicas.primary_reads():
            assert router.db_for_read(None) is None  # Django's default: the primary
    assert router.db_for_read(None) is None
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "catalog") is True
    assert router.allow_migrate(STAND_IN, "catalog") is False


def test_replica_lag_is_reported_in_healthz(anon_api, with_replica):
    body = anon_api.get("/healthz").json()
    assert body["replicas"] == {
        "ok": True,
        "max_lag_seconds": 5,
        "all": [{"alias": STAND_IN, "ok": True, "lag_seconds": 0.0}],
    }


def test_healthz_has_no_replica_section_without_replicas(anon_api):
    assert "replicas" not in anon_api.get("/healthz").json()


def test_replica_past_the_lag_limit_is_skipped(api, shop, with_replica):
    with_replica.RECSYS_REPLICA_MAX_LAG_SECONDS = -1  # any lag, even none, is past it
    assert replicas.serving_alias() == DEFAULT_DB_ALIAS
    ids, primary, replica = _served(api)
    assert ids and "embedding <=>" in primary
    assert "embedding <=>" not in replica
    state = replicas.replica_state(STAND_IN)
    assert state.ok is False and "past the limit" in state.error


def test_unreachable_replica_is_skipped_and_reported(api, anon_api, shop, with_replica, replica_unreachable):
    ids, primary, _ = _served(api)
    assert ids and "shoe-0" not in ids and "embedding <=>" in primary
    body = anon_api.get("/healthz").json()
    assert body["status"] != "down"
    assert body["replicas"]["ok"] is False
    assert body["replicas"]["all"][0]["ok"] is False and body["replicas"]["all"][0]["error"]


def test_replica_lost_in_the_middle_of_serving_falls_back_to_the_primary(api, shop, with_replica, settings):
    # the replica was healthy at its last check (which is not due again for a minute), then goes away
    assert replicas.replica_check(STAND_IN).ok is True
    conn = connections[STAND_IN]
    saved = dict(conn.settings_dict)
    conn.close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        conn.settings_dict.update(HOST="127.0.0.1", PORT=str(s.getsockname()[1]))
    try:
        assert replicas.serving_alias() == STAND_IN  # not known to be down yet
        ids, primary, _ = _served(api)
        assert ids and "shoe-0" not in ids and "embedding <=>" in primary
        assert replicas.replica_state(STAND_IN).ok is False  # marked down: the next request skips it
        assert replicas.serving_alias() == DEFAULT_DB_ALIAS
        assert primary.count("INSERT INTO recommendations_servedlist") == 1  # logged once
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)


def test_replica_settings_from_urls():
    entries = replicas.replica_settings(
        ["postgres://u:p@10.0.0.2:5432/recsys", "postgres://u:p@10.0.0.3/recsys"],
        primary={"CONN_MAX_AGE": 60},
    )
    assert list(entries) == ["replica_0", "replica_1"]
    assert entries["replica_0"]["HOST"] == "10.0.0.2" and entries["replica_1"]["NAME"] == "recsys"
    assert entries["replica_0"]["TEST"] == {"MIRROR": DEFAULT_DB_ALIAS}
    assert entries["replica_0"]["OPTIONS"]["connect_timeout"] == 1


def test_an_error_of_the_primary_is_not_blamed_on_a_healthy_replica(with_replica):
    calls = []

    def path():
        calls.append(replicas.read_alias())
        with connections[DEFAULT_DB_ALIAS].cursor() as cur:
            cur.execute("SET statement_timeout = 1")
            try:
                cur.execute("SELECT pg_sleep(0.5)")  # cancelled: an OperationalError, on the primary
            finally:
                cur.execute("RESET statement_timeout")

    with pytest.raises(OperationalError):
        replicas.serve(path)
    assert calls == [STAND_IN]  # not retried: the replica answered its check
    assert replicas.replica_state(STAND_IN).ok is True
