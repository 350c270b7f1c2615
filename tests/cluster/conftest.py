import pytest


@pytest.fixture(scope="session")
def _embedded_servers():
    """Starts nothing (it overrides tests/conftest.py's): the cluster runs PostgreSQL and Redis of its own."""
