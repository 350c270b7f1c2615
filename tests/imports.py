"""Running an import command as a shell would: its output, and its exit status checked."""

from __future__ import annotations

from io import StringIO

from django.core.management import CommandError, call_command


def import_run(command: str, path, *args: str, exit_code: int = 0) -> tuple[str, str]:
    """stdout and stderr of `manage.py <command> PATH --no-progress ARGS`, after asserting the exit status
    a shell would see: 0, or the CommandError's returncode (1 when nothing was imported, 2 when some lines
    were rejected and the rest imported)."""
    out, err = StringIO(), StringIO()
    status = 0
    try:
        call_command(command, str(path), "--no-progress", *args, stdout=out, stderr=err)
    except CommandError as exc:
        status = exc.returncode
        err.write(f"CommandError: {exc}\n")
    assert status == exit_code, f"exit {status}, expected {exit_code}:\n{err.getvalue()}"
    return out.getvalue(), err.getvalue()
