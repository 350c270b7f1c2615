"""The storefront API: one view per scenario. Each parses and validates, calls one scenario, renders."""

from __future__ import annotations

import functools

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors as catalog_selectors
from core import replicas
from core.authentication import HasApiKey
from core.payloads import ErrorSerializer
from recommendations import scenarios
from recommendations.api.serializers import (
    AnswerSerializer,
    CartInSerializer,
    ListParamsSerializer,
    SearchQuerySerializer,
    SessionInSerializer,
    UserQuerySerializer,
    answer_data,
    items_resolve,
    list_params,
    user_session_id,
)
from recommendations.served_log import served_log_timed

_ERRORS = {400: ErrorSerializer, 401: ErrorSerializer}
_LIST_PARAMS = [ListParamsSerializer]


def _serving(method):
    """The view's reads go to a read replica when one is usable, and again to the primary if it fails
    under them (core/replicas.py); the served-list log is written to the primary."""

    @functools.wraps(method)
    def view(self, request, *args, **kwargs):
        return replicas.serve(lambda: method(self, request, *args, **kwargs))

    return view


def _render(answer: scenarios.Answer) -> Response:
    return Response(answer_data(answer))


class _ServingView(APIView):
    """A recommendation endpoint: the list it serves is logged with the time the client waited for it,
    from the start of the view (the API key check included) to the rendered response (served_log.py)."""

    permission_classes = [HasApiKey]

    def dispatch(self, request, *args, **kwargs):
        with served_log_timed():
            response = super().dispatch(request, *args, **kwargs)
            # DRF renders after the view returns; render here, so that the JSON encoding is counted
            response.render()
        return response


class UserRecommendationsView(_ServingView):
    @extend_schema(
        parameters=[*_LIST_PARAMS, UserQuerySerializer],
        responses={200: AnswerSerializer, **_ERRORS},
        summary="Personalised recommendations for a user",
        description="A user without history gets the session's signal (session_id), then trending.",
    )
    @_serving
    def get(self, request, user_id: str):
        params = list_params(request.query_params)
        session_id = user_session_id(request.query_params)
        if len(user_id) > 128:
            raise ValidationError({"user_id": ["At most 128 characters."]})
        answer = scenarios.recommendations_for_user(user_id=user_id, session_id=session_id, params=params)
        response = _render(answer)
        # hit, or miss:<why> (docs/serving-cache.md): telemetry, not part of the answer
        response["X-Recsys-Cache"] = answer.cache
        return response


class SimilarItemsView(_ServingView):
    @extend_schema(
        parameters=_LIST_PARAMS,
        responses={200: AnswerSerializer, 404: ErrorSerializer, **_ERRORS},
        summary="Items similar to an item",
    )
    @_serving
    def get(self, request, item_id: str):
        try:
            item_pk = catalog_selectors.item_pk_get(external_id=item_id)
        except Http404 as exc:  # in the API's error shape, like every other error here
            raise NotFound(str(exc)) from None
        params = list_params(request.query_params)
        answer = scenarios.recommendations_similar(item_pk=item_pk, external_id=item_id, params=params)
        response = _render(answer)
        response["X-Recsys-Cache"] = answer.cache  # the item's pre-computed list (docs/serving-cache.md)
        return response


class SessionRecommendationsView(_ServingView):
    @extend_schema(
        request=SessionInSerializer,
        parameters=_LIST_PARAMS,
        responses={200: AnswerSerializer, **_ERRORS},
        summary="Recommendations for an anonymous session's recent items",
    )
    @_serving
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError({"item_ids": ["The body must be a JSON object with item_ids."]})
        session = SessionInSerializer(data=body)
        session.is_valid(raise_exception=True)
        # The common options may come in the query string or in the body (the body wins).
        options = {
            **request.query_params.dict(),
            **{k: v for k, v in body.items() if k in ListParamsSerializer().fields},
        }
        params = list_params(options)
        item_ids = session.validated_data["item_ids"]
        pks = items_resolve(item_ids, field="item_ids")
        answer = scenarios.recommendations_for_session(
            item_pks=[pks[i] for i in item_ids],
            session_id=session.validated_data["session_id"],
            params=params,
        )
        response = _render(answer)
        # a one-item session: its item's pre-computed list; longer sessions: "" (always live)
        if answer.cache:
            response["X-Recsys-Cache"] = answer.cache
        return response


class BoughtTogetherView(_ServingView):
    @extend_schema(
        parameters=_LIST_PARAMS,
        responses={200: AnswerSerializer, 404: ErrorSerializer, **_ERRORS},
        summary="Items frequently bought together with an item",
        description="Co-visitation: items bought (then viewed) by the same users or sessions. An item "
        "without co-visitation gets items like it, with scenario `bought_together_fallback_content`.",
    )
    @_serving
    def get(self, request, item_id: str):
        try:
            item_pk = catalog_selectors.item_pk_get(external_id=item_id)
        except Http404 as exc:
            raise NotFound(str(exc)) from None
        params = list_params(request.query_params)
        answer = scenarios.recommendations_bought_together(
            item_pk=item_pk, external_id=item_id, params=params
        )
        return _render(answer)


class CartRecommendationsView(_ServingView):
    @extend_schema(
        request=CartInSerializer,
        parameters=_LIST_PARAMS,
        responses={200: AnswerSerializer, **_ERRORS},
        summary="Items frequently bought together with a cart",
        description="The cart's items are never in the answer. A cart without co-visitation gets items "
        "like it, with scenario `cart_fallback_content`.",
    )
    @_serving
    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise ValidationError({"item_ids": ["The body must be a JSON object with item_ids."]})
        cart = CartInSerializer(data=body)
        cart.is_valid(raise_exception=True)
        options = {
            **request.query_params.dict(),
            **{k: v for k, v in body.items() if k in ListParamsSerializer().fields},
        }
        params = list_params(options)
        item_ids = cart.validated_data["item_ids"]
        pks = items_resolve(item_ids, field="item_ids")
        answer = scenarios.recommendations_for_cart(items={pks[i]: i for i in item_ids}, params=params)
        return _render(answer)


class TrendingView(_ServingView):
    @extend_schema(
        parameters=_LIST_PARAMS,
        responses={200: AnswerSerializer, **_ERRORS},
        summary="Trending items (time-decayed popularity), overall or in a category",
    )
    @_serving
    def get(self, request):
        return _render(scenarios.recommendations_trending(params=list_params(request.query_params)))


class SearchView(_ServingView):
    @extend_schema(
        parameters=[SearchQuerySerializer, *_LIST_PARAMS],
        responses={200: AnswerSerializer, **_ERRORS},
        summary="Semantic search over the catalog",
    )
    @_serving
    def get(self, request):
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = list_params(request.query_params)
        return _render(scenarios.recommendations_search(query=query.validated_data["q"], params=params))
