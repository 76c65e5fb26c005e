from django.urls import path

from . import views

app_name = "routing"

urlpatterns = [
    path("routes/", views.route_list, name="route-list"),
    path("routes/new/", views.route_edit, name="route-create"),
    path("routes/<int:pk>/", views.route_edit, name="route-edit"),
    path("routes/<int:pk>/breaker-reset/", views.route_breaker_reset, name="route-breaker-reset"),
    path("routes/<int:pk>/toggle/", views.route_toggle, name="route-toggle"),
    path("routes/<int:pk>/delete/", views.route_delete_view, name="route-delete"),
    path("routes/<int:pk>/test/", views.route_test_view, name="route-test"),
    path("route-tests/<int:pk>/", views.route_test_result, name="route-test-result"),
    path("p/<slug:slug>/chains/", views.chain_list, name="chain-list"),
    path("p/<slug:slug>/chains/new/", views.chain_edit, name="chain-create"),
    path("p/<slug:slug>/chains/<int:pk>/", views.chain_edit, name="chain-edit"),
    path("p/<slug:slug>/chains/<int:pk>/delete/", views.chain_remove, name="chain-delete"),
    path("p/<slug:slug>/rules/", views.rule_add, name="rule-add"),
    path("p/<slug:slug>/rules/<int:pk>/delete/", views.rule_remove, name="rule-delete"),
    path("p/<slug:slug>/runs/", views.run_list, name="run-list"),
    path("p/<slug:slug>/runs/new/", views.run_create, name="run-create"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run-progress"),
    path("runs/<int:pk>/captions/", views.run_captions, name="run-captions"),
    path("runs/<int:pk>/<slug:action>/", views.run_action, name="run-action"),
    path("captions/<int:pk>/", views.caption_detail, name="caption-detail"),
    path("captions/<int:pk>/retry/", views.caption_retry_view, name="caption-retry"),
    path("captions/<int:pk>/stop/", views.caption_stop_view, name="caption-stop"),
]
