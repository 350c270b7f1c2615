#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsys_project.settings")
    if sys.argv[1:2] == ["services"] and sys.argv[2:3] != ["start"]:
        # `services stop|status` must not start the embedded servers while loading settings.
        os.environ.setdefault("RECSYS_EMBEDDED_AUTOSTART", "0")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
