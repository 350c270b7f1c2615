"""CSV downloads of report tables, safe to open in a spreadsheet.

Item ids, titles, category names and run labels come from the shop or its users. A cell that starts with
`=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets skip before reading one of
those) is run as a formula by Excel, LibreOffice and Google Sheets: `=HYPERLINK(...)` in an item id would
become a link that leaks data or runs a command. Such text cells get a leading `'` (OWASP "CSV
Injection"), which spreadsheets show as text. Numbers are written as they are: a negative number is data.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.http import HttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """One cell: None is empty, numbers and dates as they are, text neutralised if it could be a formula."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float, Decimal, date, datetime)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_response(*, filename: str, header: list[str], rows: Iterable[Iterable[object]]) -> HttpResponse:
    """The one writer of every CSV download (report tables): an attachment with every cell through
    `csv_cell`."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return response
