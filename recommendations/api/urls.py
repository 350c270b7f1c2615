from django.urls import path

from recommendations.api.views import (
    BoughtTogetherView,
    CartRecommendationsView,
    SearchView,
    SessionRecommendationsView,
    SimilarItemsView,
    TrendingView,
    UserRecommendationsView,
)

urlpatterns = [
    path("recommendations/users/<path:user_id>", UserRecommendationsView.as_view(), name="recs-user"),
    path("recommendations/items/<path:item_id>/similar", SimilarItemsView.as_view(), name="recs-similar"),
    path(
        "recommendations/items/<path:item_id>/bought-together",
        BoughtTogetherView.as_view(),
        name="recs-bought-together",
    ),
    path("recommendations/cart", CartRecommendationsView.as_view(), name="recs-cart"),
    path("recommendations/session", SessionRecommendationsView.as_view(), name="recs-session"),
    path("recommendations/trending", TrendingView.as_view(), name="recs-trending"),
    path("search", SearchView.as_view(), name="search"),
]
