"""Signals other apps listen to. interactions imports nothing from them (DESIGN.md §2: imports point one
way)."""

from django.dispatch import Signal

# Sent inside the storing transaction with `event_pks: list[int]` when events were stored or linked to
# their item. Receivers queue their work with transaction.on_commit (co-visitation folds them in).
events_stored = Signal()

# Sent by the user-vector tasks, after commit, with `user_ids: list[str]` whose vectors changed (their new
# events were applied). Recommendations recomputes those users' candidate lists.
user_vectors_changed = Signal()
