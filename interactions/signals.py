"""Signals other apps listen to. interactions imports nothing from them (DESIGN.md §2: imports point one
way)."""

from django.dispatch import Signal

# Sent inside the storing transaction with `event_pks: list[int]` when events were stored or linked to
# their item. Receivers queue their work with transaction.on_commit (co-visitation folds them in).
events_stored = Signal()
