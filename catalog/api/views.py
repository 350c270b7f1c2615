from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import selectors, services
from catalog.api.serializers import (
    ItemBatchOutSerializer,
    ItemListOutSerializer,
    ItemListQuerySerializer,
    ItemOutSerializer,
    ItemPageSerializer,
)
from core.authentication import HasApiKey
from core.batches import check_batch
from core.payloads import ErrorSerializer, ItemBatchIn, ItemPatch, check_item, printable


class ItemBatchUpsertView(APIView):
    """`/api/v1/items`: POST upserts a batch; GET lists a page (one path, so one view)."""

    permission_classes = [HasApiKey]

    @extend_schema(
        operation_id="v1_items_list",
        parameters=[ItemListQuerySerializer],
        responses={200: ItemPageSerializer, 400: ErrorSerializer, 401: ErrorSerializer},
        summary="List items, a page at a time",
        description="Active items ordered by id, with the recommendation endpoints' filters (category "
        "prefix, price range, exclude) and in_stock. Page with `after`: pass the answer's `next_after` "
        "until it is null. Unknown ids in `exclude` are ignored.",
    )
    def get(self, request):
        query = ItemListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        items, more = selectors.items_list(
            filters=query.to_filters(),
            limit=query.validated_data["limit"],
            after=query.validated_data["after"],
        )
        return Response(
            {
                "items": ItemListOutSerializer(items, many=True).data,
                "next_after": items[-1].external_id if more else None,
            }
        )

    @extend_schema(
        request=ItemBatchIn,
        responses={200: ItemBatchOutSerializer, 400: ErrorSerializer, 401: ErrorSerializer},
        summary="Upsert a batch of items by id",
        description="Each item is validated on its own; valid items are stored even when others are "
        "rejected. 200 when any item was stored or unchanged, 400 when all were rejected.",
    )
    def post(self, request):
        raw_items = check_batch(request.data, key="items")
        valid: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for index, raw in enumerate(raw_items):
            clean, errors = check_item(raw)
            if clean is None:
                entry = {"index": index, "errors": errors}
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    entry["id"] = printable(raw["id"][:255])
                rejected.append(entry)
            else:
                valid.append(clean)
        result = services.item_upsert(items=valid) if valid else services.UpsertResult()
        body = {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": rejected,
        }
        if not valid:
            body = {"error": "invalid", "detail": "Every item was rejected; see rejected.", **body}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        return Response(body)


class ItemDetailView(APIView):
    permission_classes = [HasApiKey]

    @extend_schema(responses={200: ItemOutSerializer, 404: ErrorSerializer}, summary="Get an item")
    def get(self, request, item_id: str):
        return Response(ItemOutSerializer(selectors.item_get(external_id=item_id)).data)

    @extend_schema(
        request=ItemPatch,
        responses={200: ItemOutSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
        summary="Change some fields of an item (stock, price, ...)",
    )
    def patch(self, request, item_id: str):
        item = selectors.item_get(external_id=item_id)
        clean, errors = check_item(request.data, partial=True)
        if clean is None:
            raise ValidationError(errors)
        item = services.item_update(item=item, values=clean)
        return Response(ItemOutSerializer(item).data)

    @extend_schema(responses={204: None, 404: ErrorSerializer}, summary="Deactivate an item")
    def delete(self, request, item_id: str):
        services.item_deactivate(item=selectors.item_get(external_id=item_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
