from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from catalog.models import Item
from interactions.models import Event, UserProfile
from tests.imports import import_run

pytestmark = pytest.mark.django_db
REAL_FILE = Path(__file__).resolve().parents[3] / "shared" / "data" / "online_retail" / "online_retail.csv.gz"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROWS = [
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26,2.55,17850,United Kingdom",  # 2
    '536365,71053,"METAL LANTERN, WHITE",6,2010-12-01 08:26,3.39,17850,United Kingdom',  # 3
    "C536379,71053,METAL LANTERN,-1,2010-12-01 09:41,3.39,17850,United Kingdom",  # 4 cancellation
    "536380,22139,,-20,2010-12-01 09:45,0,,United Kingdom",  # 5 stock correction
    "536381,POST,POSTAGE,1,2010-12-01 09:50,18,12583,France",  # 6 service line
    "536382,21730,,2,2010-12-01 10:00,4.25,,United Kingdom",  # 7 guest, no description yet
    "536383,21730,GLASS STAR FROSTED T-LIGHT HOLDER,1,2010-12-01 10:05,4.25,13047.0,United Kingdom",  # 8
    "536384,22752,SET 7 BABUSHKA NESTING BOXES,six,2010-12-01 10:10,7.65,13047,United Kingdom",  # 9 bad
    "536385,22752,SET 7 BABUSHKA NESTING BOXES,2,12/1/2010 10:15,7.65,13047,United Kingdom",  # 10
]


def run(path, *args, exit_code: int = 0) -> tuple[str, str]:
    return import_run("import_online_retail", path, *args, exit_code=exit_code)


@pytest.fixture
def retail_csv(tmp_path) -> Path:
    path = tmp_path / "online_retail.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(HEADER + "\n".join(ROWS) + "\n")
    return path


def test_rows_map_to_items_and_purchase_events(retail_csv):
    out, err = run(retail_csv, exit_code=2)
    assert (
        "9 rows: 5 purchases (1 guest checkouts without CustomerID) of which 5 newly stored and 0 already "
        "stored; skipped 1 cancellations, 1 rows with Quantity <= 0, 1 service lines; 1 rejected; "
        "4 items created." in out
    )
    assert "line 9: rejected: Quantity: Must be an integer, got 'six'." in err

    first = Event.objects.get(event_id="uci-536365-2")
    assert (first.user_id, first.session_id, first.item_external_id) == ("17850", "536365", "85123A")
    assert (first.event_type, first.quantity, first.value) == ("purchase", 6, Decimal("2.5500"))
    assert first.timestamp == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    assert first.item.title == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert first.item.price == Decimal("2.55") and first.item.currency == "GBP"
    assert Item.objects.get(external_id="71053").title == "METAL LANTERN, WHITE"

    guest = Event.objects.get(event_id="uci-536382-7")
    assert guest.user_id is None and guest.session_id == "536382"
    # the guest row came before any description of 21730; it links once the item is created
    assert guest.item == Item.objects.get(external_id="21730")
    assert Event.objects.get(event_id="uci-536383-8").user_id == "13047"  # "13047.0" normalised
    assert Event.objects.get(event_id="uci-536385-10").timestamp == datetime(2010, 12, 1, 10, 15, tzinfo=UTC)

    assert not Event.objects.filter(session_id__in=["C536379", "536380", "536381"]).exists()
    assert not Item.objects.filter(external_id__in=["POST", "22139"]).exists()
    assert UserProfile.objects.get(external_id="17850").purchase_count == 2


def test_rerunning_the_import_doubles_nothing(retail_csv):
    run(retail_csv, exit_code=2)
    before = (
        Event.objects.count(),
        Item.objects.count(),
        UserProfile.objects.get(external_id="13047").event_count,
    )
    out, _ = run(retail_csv, "--batch-size", "2", exit_code=2)
    assert "of which 0 newly stored and 5 already stored" in out
    assert "0 items created" in out
    after = (
        Event.objects.count(),
        Item.objects.count(),
        UserProfile.objects.get(external_id="13047").event_count,
    )
    assert after == before


def test_a_file_without_the_online_retail_columns_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("id,title\n1,Lamp\n")
    _, err = run(path, exit_code=1)
    assert re.search("missing columns InvoiceNo", err), err
    assert Event.objects.count() == 0


@pytest.mark.skipif(not REAL_FILE.exists(), reason=f"the UCI Online Retail file is not at {REAL_FILE}")
def test_first_rows_of_the_real_file_import_cleanly():
    out, err = run(REAL_FILE, "--limit", "5000")
    assert err == ""
    assert out.startswith("5000 rows:")
    assert Event.objects.count() > 4500
    first = Event.objects.get(event_id="uci-536365-2")
    assert (first.user_id, first.item.external_id, first.quantity) == ("17850", "85123A", 6)
