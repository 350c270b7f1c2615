from django.urls import path

from core.ratelimit import rate_limited_by_address
from storefront import views

app_name = "storefront"

urlpatterns = [
    path("", views.home, name="home"),
    path("catalog", views.catalog, name="catalog"),
    path("items/<path:item_id>", views.item, name="item"),
    path("cart", views.cart, name="cart"),
    path("storefront/image.svg", views.image, name="image"),
    path("storefront/recommendations/<str:kind>", views.recommendations, name="recommendations"),
    path("storefront/events", views.events, name="events"),
    path("storefront/impressions", views.impressions, name="impressions"),
]

# Every storefront route is public (no login, no key): each is rate-limited per client address
# (RECSYS_STOREFRONT_RATE), with a 429 and Retry-After past it.
_limit = rate_limited_by_address(scope="storefront", setting="RECSYS_STOREFRONT_RATE")
urlpatterns = [path(str(p.pattern), _limit(p.callback), name=p.name) for p in urlpatterns]
