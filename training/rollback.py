"""The swap a rollback makes, for every model kind's registry (the two-tower model, the ranker)."""

from __future__ import annotations

from django.utils import timezone

from recommendations.models import ModelVersion


def rollback_swap(*, current: ModelVersion | None, target: ModelVersion | None, fallback: str) -> None:
    """Inside the caller's transaction: `current` is rolled back (unless it is the target), `target` is
    activated again; `fallback` names what serves when there is no target."""
    if current is not None and (target is None or target.pk != current.pk):
        current.is_active = False
        current.status = ModelVersion.Status.ROLLED_BACK
        current.reason = (
            f"rolled back {timezone.now():%Y-%m-%d %H:%M} UTC to "
            f"{f'v{target.pk}' if target else fallback}; was: {current.reason}"
        )
        current.save()
    if target is not None:
        target.is_active = True
        target.status = ModelVersion.Status.PROMOTED
        target.activated_at = timezone.now()
        target.reason = (
            f"re-activated by rollback{f' from v{current.pk}' if current else ''}; {target.reason}"
        )
        target.save()
