"""The scheduled retraining (and the demo's first training run) on a shop with too little data."""

from __future__ import annotations

import pytest

from recommendations.models import ModelVersion
from training.tasks import two_tower_train_maintenance_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_shop_without_events_is_not_an_error_and_serves_no_model(caplog):
    caplog.set_level("WARNING", logger="training.tasks")
    outcome = two_tower_train_maintenance_task()
    assert outcome.startswith("towers not trained (") and "; ranker not trained (" in outcome
    assert "two-tower: not trained" in caplog.text and "ranker: not trained" in caplog.text
    assert not ModelVersion.objects.filter(is_active=True).exists()
