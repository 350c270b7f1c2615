"""import_online_retail FILE: the UCI "Online Retail" CSV (InvoiceNo, StockCode, Description, Quantity,
InvoiceDate, UnitPrice, CustomerID, Country) as items and purchase events (DESIGN.md §5).

Mapping: CustomerID -> user_id, InvoiceNo -> session_id, StockCode -> item id, Description -> title,
each row -> a `purchase` event with `quantity` and `value` = UnitPrice. event_id is
`uci-<InvoiceNo>-<line>`, so re-running the same file stores nothing twice.

Deliberate choices (docs/importing.md):
- Cancellations (InvoiceNo "C...") and rows with Quantity <= 0 are returns and stock corrections, not
  purchases: skipped and counted.
- Rows without CustomerID are guest checkouts: kept with the invoice as session_id and no user_id, so they
  still count for popularity and co-occurrence.
- Postage, fees, discounts, manual adjustments and gift vouchers (POST, DOT, M, D, ...) are not products:
  skipped and counted.
- The item takes the first non-empty Description and that row's UnitPrice; rows with an empty Description
  still become events and link when the item appears.
- InvoiceDate has no zone: read as UTC (the shop is in the UK; at most an hour off in summer).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError

from catalog.services import item_upsert
from core.feeds import Feed, FeedImportCommand
from core.payloads import MAX_EVENT_ID, MAX_ITEM_ID, MAX_QUANTITY, MAX_VALUE
from interactions.services import events_ingest

# The same path and the same measurement as import_events.EVENT_IMPORT_BATCH (5,000 rows: 0.5-0.6 s a
# batch under load, 1.6x faster overall than 1,000). The whole-file figure: bench/import_online_retail.py.
ONLINE_RETAIL_BATCH = 5000
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
# Service lines, not products: postage, carriage, manual, discount, samples, bad-debt adjustment, bank and
# marketplace fees, charity commission.
NON_PRODUCT_CODES = frozenset({"POST", "DOT", "C2", "M", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"})
NON_PRODUCT_PREFIXES = ("GIFT_",)  # gift vouchers (gift_0001_10, ...)
DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%m/%d/%Y %H:%M")


class RowError(ValueError):
    pass


class Command(FeedImportCommand):
    help = (
        "Import the UCI Online Retail CSV (.csv or .csv.gz) as items and purchase events. Cancellations, "
        "Quantity <= 0 and service lines are skipped and counted; guest rows are kept by session."
    )
    default_batch_size = ONLINE_RETAIL_BATCH

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(format="csv")

    def import_feed(self, feed: Feed, batches, **options) -> None:
        self._dates: dict[str, datetime] = {}
        self._items_sent: set[str] = set()
        counts = dict.fromkeys(
            ["lines", "accepted", "duplicates", "guest", "cancelled", "not_positive", "non_product"], 0
        )
        items_created = 0
        for batch in batches:
            if not feed.header:
                continue
            missing = [c for c in COLUMNS if c not in feed.header]
            if missing:
                raise CommandError(
                    f"{feed.path.name} is not the Online Retail CSV: missing columns {', '.join(missing)}."
                )
            events: list[dict[str, Any]] = []
            new_items: dict[str, dict[str, Any]] = {}
            for record in batch:
                counts["lines"] += 1
                if record.data is None:
                    self.reject(record.line, record.error)
                    continue
                try:
                    outcome = self._row(record.line, record.data, events, new_items)
                except RowError as exc:
                    self.reject(record.line, str(exc))
                    continue
                if outcome:
                    counts[outcome] += 1
            if new_items:
                # Items first, in their own statement, so the events below link to them on insert.
                items_created += item_upsert(items=list(new_items.values())).created
            if events:
                result = events_ingest(events=events, bulk=True)
                counts["accepted"] += result.accepted
                counts["duplicates"] += result.duplicates
        purchases = counts["accepted"] + counts["duplicates"]
        self.stdout.write(
            f"{counts['lines']} rows: {purchases} purchases ({counts['guest']} guest checkouts without "
            f"CustomerID) of which {counts['accepted']} newly stored and {counts['duplicates']} already "
            f"stored; skipped {counts['cancelled']} cancellations, {counts['not_positive']} rows with "
            f"Quantity <= 0, {counts['non_product']} service lines; {self.rejected} rejected; "
            f"{items_created} items created."
        )
        self.rejections_check(lines=counts["lines"], what="row")

    def _row(self, line: int, row: dict[str, str], events: list, new_items: dict) -> str:
        """Validate and map one row; append its event (and its item, first time seen). Returns the name of
        the counter to bump, or "" for a plain customer purchase."""
        invoice = row["InvoiceNo"].strip()
        if not invoice:
            raise RowError("InvoiceNo: This field is required.")
        if invoice[0] in "cC":
            return "cancelled"
        try:
            quantity = int(row["Quantity"])
        except ValueError:
            raise RowError(f"Quantity: Must be an integer, got {row['Quantity'][:50]!r}.") from None
        if quantity <= 0:
            return "not_positive"
        if quantity > MAX_QUANTITY:  # the event payload's cap (core/payloads.py)
            raise RowError(f"Quantity: Must be between 1 and {MAX_QUANTITY}.")
        code = row["StockCode"].strip()
        if not code or len(code) > MAX_ITEM_ID:
            raise RowError(f"StockCode: Must be 1 to {MAX_ITEM_ID} characters.")
        upper = code.upper()
        if upper in NON_PRODUCT_CODES or upper.startswith(NON_PRODUCT_PREFIXES):
            return "non_product"
        try:
            price = Decimal(row["UnitPrice"])
        except InvalidOperation:
            raise RowError(f"UnitPrice: Must be a decimal number, got {row['UnitPrice'][:50]!r}.") from None
        if not price.is_finite() or price < 0 or price > MAX_VALUE:
            raise RowError(f"UnitPrice: Must be a number between 0 and {MAX_VALUE}.")
        moment = self._date(row["InvoiceDate"])
        customer = row["CustomerID"].strip()
        if customer.endswith(".0"):  # exported through a float column
            customer = customer[:-2]
        if len(customer) > MAX_EVENT_ID or len(invoice) > 100:
            raise RowError("CustomerID/InvoiceNo: too long.")

        title = " ".join(row["Description"].split())[: settings.RECSYS_MAX_TITLE]
        if title and code not in self._items_sent:
            self._items_sent.add(code)
            new_items[code] = {
                "id": code,
                "title": title,
                "price": price.quantize(Decimal("0.01")),
                "currency": "GBP",
            }
        events.append(
            {
                "event_id": f"uci-{invoice}-{line}",
                "user_id": customer or None,
                "session_id": invoice,
                "item_id": code,
                "event_type": "purchase",
                "timestamp": moment,
                "device_type": "",
                "recommendation_id": None,
                "surface": "",
                "position": None,
                "value": price,
                "quantity": quantity,
            }
        )
        return "" if customer else "guest"

    def _date(self, text: str) -> datetime:
        # ~23,000 distinct minutes in 540,000 rows: parse each once.
        moment = self._dates.get(text)
        if moment is not None:
            return moment
        for fmt in DATE_FORMATS:
            try:
                moment = datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC)
                break
            except ValueError:
                continue
        else:
            raise RowError(f"InvoiceDate: Must be 'YYYY-MM-DD HH:MM', got {text[:50]!r}.")
        self._dates[text] = moment
        return moment
