"""Serving tests share one process: profiles and promotions cached by one test (selectors keeps them for
a couple of seconds) must not leak into the next, whose database transaction never had them."""

from __future__ import annotations

import pytest

from recommendations.experiments import experiments_cache_clear
from recommendations.selectors import serving_config_clear


@pytest.fixture(autouse=True)
def _fresh_serving_config():
    serving_config_clear()
    experiments_cache_clear()
    yield
    serving_config_clear()
    experiments_cache_clear()
