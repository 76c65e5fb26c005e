from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("account/api-tokens/", views.token_list, name="token-list"),
    path("account/api-tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("projects/<slug:slug>/search/", views.image_search, name="image-search"),
]
