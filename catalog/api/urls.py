from django.urls import path

from catalog.api.views import ItemBatchUpsertView, ItemDetailView

urlpatterns = [
    path("items", ItemBatchUpsertView.as_view(), name="items-upsert"),
    path("items/<path:item_id>", ItemDetailView.as_view(), name="item-detail"),
]
