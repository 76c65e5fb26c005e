from django.urls import path

from . import metrics_views, pairwise_views, views

app_name = "review"

urlpatterns = [
    path("", views.queue_list, name="queue-list"),
    path("projects/<slug:slug>/", views.work, name="work"),
    path("projects/<slug:slug>/next/", views.claim_next, name="next"),
    path("projects/<slug:slug>/counts/", views.counts, name="counts"),
    path("projects/<slug:slug>/history/", views.history, name="history"),
    path("projects/<slug:slug>/leases/", views.leases, name="leases"),
    path("projects/<slug:slug>/adjudication/", views.adjudication_list, name="adjudication"),
    path("projects/<slug:slug>/policy/", views.policy, name="policy"),
    path("projects/<slug:slug>/compare/", metrics_views.compare, name="compare"),
    path("projects/<slug:slug>/compare.csv", metrics_views.compare_csv, name="compare-csv"),
    path(
        "projects/<slug:slug>/compare/images/", metrics_views.compare_images, name="compare-images"
    ),
    path(
        "projects/<slug:slug>/compare/images.csv",
        metrics_views.compare_images_csv,
        name="compare-images-csv",
    ),
    path("projects/<slug:slug>/dashboard/", metrics_views.dashboard, name="dashboard"),
    path(
        "projects/<slug:slug>/dashboard/<slug:plot>.csv",
        metrics_views.dashboard_csv,
        name="dashboard-csv",
    ),
    path("projects/<slug:slug>/pairwise/", pairwise_views.work, name="pairwise"),
    path("projects/<slug:slug>/pairwise/next/", pairwise_views.claim_next, name="pairwise-next"),
    path(
        "projects/<slug:slug>/pairwise/results/",
        pairwise_views.results,
        name="pairwise-results",
    ),
    path("projects/<slug:slug>/pairwise/create/", pairwise_views.create, name="pairwise-create"),
    path("pairwise/<int:pk>/judge/", pairwise_views.judge, name="pairwise-judge"),
    path("pairwise/<int:pk>/pass/", pairwise_views.pass_pair, name="pairwise-pass"),
    path("leases/<int:pk>/verdict/", views.verdict, name="verdict"),
    path("leases/<int:pk>/heartbeat/", views.heartbeat, name="heartbeat"),
    path("leases/<int:pk>/release/", views.lease_release, name="lease-release"),
    path("leases/<int:pk>/reassign/", views.lease_reassign, name="lease-reassign"),
    path("verdicts/<int:pk>/undo/", views.undo, name="undo"),
    path("items/<int:pk>/adjudicate/", views.adjudicate, name="adjudicate"),
    path("images/<int:pk>/risk/", views.risk_correct, name="risk-correct"),
    path("projects/<slug:slug>/risk/", views.risk_correct_bulk, name="risk-correct-bulk"),
]
