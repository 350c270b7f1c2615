"""Signals other apps listen to. training imports nothing from them (DESIGN.md §2: imports point down)."""

from django.dispatch import Signal

# Sent by `training.evaluation.evaluation_record` with `result: EvaluationResult` when a gate has scored a
# candidate model. analytics stores the result as an EvaluationRun and returns its id, which the model
# version keeps (`ModelVersion.evaluation_run_id`).
evaluation_finished = Signal()
