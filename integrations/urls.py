from django.urls import path

from . import views

app_name = "integrations"

urlpatterns = [
    path("account/api-tokens/", views.token_list, name="token-list"),
    path("account/api-tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("projects/<slug:slug>/search/", views.image_search, name="image-search"),
    path("projects/<slug:slug>/webhooks/", views.webhook_list, name="webhook-list"),
    path("webhooks/<int:pk>/", views.webhook_detail, name="webhook-detail"),
    path("webhooks/<int:pk>/test/", views.webhook_test, name="webhook-test"),
    path("webhooks/<int:pk>/toggle/", views.webhook_toggle, name="webhook-toggle"),
    path("webhooks/<int:pk>/delete/", views.webhook_remove, name="webhook-delete"),
]
