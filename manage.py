#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
    if not (sys.argv[1:2] == ["services"] and sys.argv[2:3] != ["start"]):
        # An entry point: start the embedded servers the settings point at (core/embedded.py), except for
        # `services stop|status`, which are about those servers and must not start them.
        from core import embedded

        embedded.ensure_started()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
