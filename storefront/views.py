"""The reference storefront: a small demo shop at `/` that shows how a shop integrates recommendations.

How the browser is authenticated (docs/storefront.md): it never holds an API key. Pages are
rendered by Django; the JS client (`static/recsys.js`) talks only to two same-origin endpoints below,
which identify the visitor by their Django session (a random visitor id kept in the session), are
CSRF-protected, and call the serving scenarios and event ingestion in-process. A shop on another stack
does the same from its own backend with its Api-Key (DESIGN.md §4), and keeps the key server-side.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from catalog.selectors import (
    item_active_get,
    item_departments,
    item_titles,
    items_active_by_external_id,
    items_active_by_title,
)
from core.payloads import check_event
from interactions.services import events_ingest
from recommendations import selectors, services
from recommendations.served_log import served_log_timed
from storefront.images import MAX_CATEGORY_CHARS, image_svg, item_image_url
from storefront.middleware import UNSAFE_CHARACTERS, UNSAFE_REASON
from storefront.reasons import reason_item_ids, reason_text

logger = logging.getLogger(__name__)

PAGE_SIZE = 24
MAX_LIMIT = 24
# What the browser may report: interactions it can see. Purchases come from the shop's order system.
BROWSER_EVENT_TYPES = {"view", "click", "add_to_cart"}
MAX_EVENTS_PER_POST = 20
SURFACE_MAX = 100
QUERY_MAX = 200
SEARCH_RESULTS = 24
CART_MAX = 50
KINDS = ("user", "trending", "similar", "bought_together", "cart")


def _visitor(request: HttpRequest, *, create: bool) -> tuple[str, str] | None:
    """(user_id, session_id) of this browser: a random visitor id kept in its Django session, whose key is
    the session id. Pages create the session (`create`); the JSON endpoints only use a session the browser
    sent back, so a client that keeps no cookies gets no session row (and no logged list) per request.
    None: no session, and none created."""
    visitor_id = request.session.get("visitor_id")  # loading forgets a key with no live session row
    if visitor_id is None:
        if not create and not request.session.session_key:
            return None
        visitor_id = request.session["visitor_id"] = f"web-{uuid.uuid4().hex[:20]}"
    if not request.session.session_key:
        request.session.save()
    return visitor_id, request.session.session_key


@require_GET
@ensure_csrf_cookie
def home(request: HttpRequest) -> HttpResponse:
    _visitor(request, create=True)
    return render(request, "storefront/home.html", {"page": "home", "departments": _departments()})


def _departments() -> list[str]:
    """The top-level categories of the active catalog, for the category filter."""
    return item_departments()


def _card(
    *, external_id, title, price, image_url, category_path, attributes=None, reason="", href=""
) -> dict:
    return {
        "id": external_id,
        "title": title,
        "price": price,
        "image_url": item_image_url(
            image_url=image_url, category_path=category_path, title=title, attributes=attributes
        ),
        "reason_text": reason,
        "href": href,
    }


@require_GET
@ensure_csrf_cookie
@served_log_timed()  # the search's list is logged with the time the page took
def catalog(request: HttpRequest) -> HttpResponse:
    """The catalog, by title, or with `q` the semantic search's answer (logged like any served list, and
    its cards carry its recommendation_id), both narrowed to a department with `category`."""
    visitor = _visitor(request, create=True)
    category = request.GET.get("category", "").strip()[:MAX_CATEGORY_CHARS]
    query = request.GET.get("q", "").strip()[:QUERY_MAX]
    context = {"category": category, "q": query, "page": "catalog", "departments": _departments()}
    if query:
        user_id, session_id = visitor or ("", "")
        answer = services.search_serve(
            query=query,
            limit=SEARCH_RESULTS,
            surface="search",
            category=category,
            user_id=user_id,
            session_id=session_id,
        )
        rec = str(answer.recommendation_id)
        context["results"] = [
            _card(
                external_id=i["id"],
                title=i["title"],
                price=i["price"],
                image_url=i["image_url"],
                category_path=i["category_path"],
                href=f"?rec={rec}&pos={n}&surface=search",
            )
            for n, i in enumerate(answer.items, start=1)
        ]
        context["recommendation_id"] = rec
        return render(request, "storefront/catalog.html", context)
    page = Paginator(items_active_by_title(department=category), PAGE_SIZE).get_page(request.GET.get("page"))
    context["page_obj"] = page
    context["results"] = [
        _card(
            external_id=i.external_id,
            title=i.title,
            price=i.price,
            image_url=i.image_url,
            category_path=i.category_path,
            attributes=i.attributes,
        )
        for i in page
    ]
    return render(request, "storefront/catalog.html", context)


@require_GET
@ensure_csrf_cookie
def item(request: HttpRequest, item_id: str) -> HttpResponse:
    _visitor(request, create=True)
    obj = item_active_get(external_id=item_id)
    if obj is None:
        raise Http404("No such item.")
    image = item_image_url(
        image_url=obj.image_url, category_path=obj.category_path, title=obj.title, attributes=obj.attributes
    )
    return render(
        request,
        "storefront/item.html",
        {"item": obj, "image_url": image, "page": "item", "departments": _departments()},
    )


@require_GET
@ensure_csrf_cookie
def cart(request: HttpRequest) -> HttpResponse:
    """The visitor's cart (what they added, kept in their session) and what goes with it."""
    _visitor(request, create=True)
    ids = request.session.get("cart", [])
    found = items_active_by_external_id(external_ids=ids)
    cards = [
        _card(
            external_id=i.external_id,
            title=i.title,
            price=i.price,
            image_url=i.image_url,
            category_path=i.category_path,
            attributes=i.attributes,
        )
        for i in (found[x] for x in ids if x in found)
    ]
    return render(
        request, "storefront/cart.html", {"items": cards, "page": "cart", "departments": _departments()}
    )


@require_GET
def image(request: HttpRequest) -> HttpResponse:
    """A generated item picture (storefront/images.py): public like every storefront route, no database,
    cached by the browser for a day. `c` is the category path ("/"-separated), `color` a colour name."""
    category = request.GET.get("c", "")[:MAX_CATEGORY_CHARS]
    colour = request.GET.get("color", "")[:30]
    response = HttpResponse(image_svg(category=category, colour=colour), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    # opened directly, the SVG may draw and nothing else
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _bad(field: str, reason: str) -> JsonResponse:
    return JsonResponse(
        {"error": "invalid", "detail": f"{field}: {reason}", "fields": {field: [reason]}}, status=400
    )


@require_GET
@served_log_timed()  # the list is logged with the time the visitor waited for it
def recommendations(request: HttpRequest, kind: str) -> JsonResponse:
    """A list for this visitor: `user` (recommended for you), `trending`, `similar` or `bought_together`
    (?item=ID), or `cart` (what goes with the visitor's cart); `exclude` (comma-separated ids) leaves
    items out. Same answer shape as the API, plus `reason_text` (the reason said for a person) and a
    generated `image_url` for items without one; the served list is logged under its recommendation_id,
    with the visitor's ids, like any other (a browser without a session gets trending for `user`,
    unlogged)."""
    visitor = _visitor(request, create=False)
    # Without a session the list is served but not logged: a cookieless client would write one per
    # request, and it can send no event pointing at it (events need the session). A default preview
    # serves exactly the live list, now and with promotions, and logs nothing.
    user_id, session_id = visitor or ("", "")
    try:
        limit = int(request.GET.get("limit", "8"))
    except ValueError:
        return _bad("limit", "Must be a whole number.")
    if not 1 <= limit <= MAX_LIMIT:
        return _bad("limit", f"Must be between 1 and {MAX_LIMIT}.")
    surface = request.GET.get("surface", kind)[:SURFACE_MAX]
    excluded = [x for x in request.GET.get("exclude", "").split(",") if x.strip()][: MAX_LIMIT * 4]
    exclude_pks = (
        frozenset(selectors.items_pks_by_external_id(external_ids=excluded).values())
        if excluded
        else frozenset()
    )
    serve = functools.partial(
        services.recommendations_serve,
        limit=limit,
        surface=surface,
        exclude_pks=exclude_pks,
        user_id=user_id,
        session_id=session_id,
        unlogged=not visitor,
    )
    if kind == "user" and visitor:
        answer = serve(kind="user")
    elif kind in ("user", "trending"):
        answer = serve(kind="trending")
    elif kind in ("similar", "bought_together"):
        item_id = request.GET.get("item", "")
        item_pk = selectors.items_pks_by_external_id(external_ids=[item_id]).get(item_id)
        if item_pk is None:
            return _bad("item", "Unknown item id.")
        answer = serve(kind=kind, item=(item_pk, item_id))
    elif kind == "cart":
        in_cart = request.session.get("cart", []) if visitor else []
        pks = selectors.items_pks_by_external_id(external_ids=in_cart)
        if not pks:
            answer = serve(kind="trending")
        else:
            answer = serve(kind="cart", cart={pk: external_id for external_id, pk in pks.items()})
    else:
        return _bad("kind", f"Must be one of {', '.join(KINDS)}.")
    cited = reason_item_ids([i["reason"] for i in answer.items])
    titles = item_titles(external_ids=list(cited)) if cited else {}
    items = [
        {
            "id": i["id"],
            "title": i["title"],
            "price": None if i["price"] is None else str(i["price"]),
            "image_url": item_image_url(
                image_url=i["image_url"], category_path=i["category_path"], title=i["title"]
            ),
            "category_path": i["category_path"],
            "score": i["score"],
            "reason": i["reason"],
            "reason_text": reason_text(i["reason"], titles=titles),
        }
        for i in answer.items
    ]
    return JsonResponse(
        {"recommendation_id": str(answer.recommendation_id), "scenario": answer.scenario, "items": items}
    )


@require_POST
def events(request: HttpRequest) -> JsonResponse:
    """Events from the browser: `{"events": [{event_id, item_id, event_type, recommendation_id?, surface?,
    position?}]}`. The visitor's ids and the timestamp are set here, never taken from the browser."""
    visitor = _visitor(request, create=False)
    if visitor is None:
        return _bad("session", "No visitor session: open a storefront page first, with cookies enabled.")
    user_id, session_id = visitor
    try:
        body = json.loads(request.body or b"null", parse_constant=_reject_constant)
    except ValueError:
        return _bad("events", "The body must be JSON.")
    except RecursionError:
        return _bad("events", "The body must be JSON nested at most a few levels deep.")
    batch = body.get("events") if isinstance(body, dict) else None
    if not isinstance(batch, list) or not batch:
        return _bad("events", "Must be a non-empty list.")
    if len(batch) > MAX_EVENTS_PER_POST:
        return _bad("events", f"At most {MAX_EVENTS_PER_POST} per request.")
    now = timezone.now().isoformat()
    valid, rejected = [], []
    for index, raw in enumerate(batch):
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("event_type"), str)
            or raw["event_type"] not in BROWSER_EVENT_TYPES
        ):
            rejected.append(
                {"index": index, "errors": {"event_type": ["Must be one of view, click, add_to_cart."]}}
            )
            continue
        allowed = {
            k: raw[k]
            for k in ("event_id", "item_id", "event_type", "recommendation_id", "surface", "position")
            if k in raw
        }
        unsafe = sorted(k for k, v in allowed.items() if isinstance(v, str) and UNSAFE_CHARACTERS.search(v))
        if unsafe:
            # PostgreSQL cannot store NUL nor a lone surrogate: refuse the event here, not with a 500
            rejected.append({"index": index, "errors": {k: [UNSAFE_REASON] for k in unsafe}})
            continue
        clean, errors = check_event(
            {**allowed, "user_id": user_id, "session_id": session_id, "timestamp": now, "device_type": "web"}
        )
        if errors:
            rejected.append({"index": index, "errors": errors})
        else:
            # the browser's event id is only unique per browser: scope it to the visitor
            clean["event_id"] = f"{user_id}:{clean['event_id']}"[:128]
            valid.append(clean)
    dropped = _drop_foreign_recommendation_ids(valid, user_id=user_id, session_id=session_id)
    result = events_ingest(events=valid) if valid else None
    added = [e["item_id"] for e in valid if e["event_type"] == "add_to_cart"]
    if added:
        # the cart the cart page and cart recommendations read: newest last, each item once
        kept = [x for x in request.session.get("cart", []) if x not in added]
        request.session["cart"] = (kept + list(dict.fromkeys(added)))[-CART_MAX:]
    body = {
        "accepted": result.accepted if result else 0,
        "duplicates": result.duplicates if result else 0,
        "rejected": rejected,
        "recommendation_ids_dropped": dropped,
    }
    return JsonResponse(body, status=200 if valid else 400)


MAX_IMPRESSIONS_PER_POST = 20


@require_POST
def impressions(request: HttpRequest) -> JsonResponse:
    """Which items of served lists the visitor actually saw: `{"impressions": [{"recommendation_id",
    "positions": [1, 2, ...]}]}` (1-based). Recorded on lists served to this visitor only; the answer
    says how many lists were updated (`recorded`) and which entries were rejected."""
    visitor = _visitor(request, create=False)
    if visitor is None:
        return _bad("session", "No visitor session: open a storefront page first, with cookies enabled.")
    try:
        body = json.loads(request.body or b"null", parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _bad("impressions", "The body must be JSON.")
    batch = body.get("impressions") if isinstance(body, dict) else None
    if not isinstance(batch, list) or not batch:
        return _bad("impressions", "Must be a non-empty list.")
    if len(batch) > MAX_IMPRESSIONS_PER_POST:
        return _bad("impressions", f"At most {MAX_IMPRESSIONS_PER_POST} per request.")
    seen: dict[uuid.UUID, set[int]] = {}
    rejected = []
    for index, entry in enumerate(batch):
        errors = {}
        rec = entry.get("recommendation_id") if isinstance(entry, dict) else None
        positions = entry.get("positions") if isinstance(entry, dict) else None
        try:
            rec_id = uuid.UUID(rec) if isinstance(rec, str) else None
        except ValueError:
            rec_id = None
        if rec_id is None:
            errors["recommendation_id"] = ["Must be the recommendation_id of a served list."]
        if (
            not isinstance(positions, list)
            or not positions
            or len(positions) > MAX_LIMIT * 4
            or not all(isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 100 for p in positions)
        ):
            errors["positions"] = ["Must be a non-empty list of 1-based positions (1 to 100)."]
        if errors:
            rejected.append({"index": index, "errors": errors})
        else:
            assert rec_id is not None
            seen.setdefault(rec_id, set()).update(positions)
    user_id, session_id = visitor
    recorded = services.served_lists_seen_record(seen=seen, user_id=user_id, session_id=session_id)
    return JsonResponse({"recorded": recorded, "rejected": rejected}, status=200 if seen else 400)


def _drop_foreign_recommendation_ids(events: list[dict], *, user_id: str, session_id: str) -> int:
    """A browser may send any recommendation_id; only a list served to this visitor may be credited. An
    event citing another list (forged, guessed, or from a link someone shared) is still stored, as an
    interaction, with its recommendation_id, surface and position removed: attribution never sees it.
    Returns how many were removed (in the answer, and logged, so a spike can be noticed)."""
    cited = {e["recommendation_id"] for e in events if e["recommendation_id"]}
    served = selectors.served_lists_of_visitor(
        recommendation_ids=cited, user_id=user_id, session_id=session_id
    )
    dropped = 0
    for event in events:
        if event["recommendation_id"] and event["recommendation_id"] not in served:
            event.update(recommendation_id=None, surface="", position=None)
            dropped += 1
    if dropped:
        logger.info(
            "storefront: %d event(s) cited a list not served to their visitor; not attributed", dropped
        )
    return dropped
