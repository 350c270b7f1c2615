from django.urls import path

from storefront import views

app_name = "storefront"

urlpatterns = [
    path("", views.home, name="home"),
    path("catalog", views.catalog, name="catalog"),
    path("items/<path:item_id>", views.item, name="item"),
    path("storefront/recommendations/<str:kind>", views.recommendations, name="recommendations"),
    path("storefront/events", views.events, name="events"),
]
