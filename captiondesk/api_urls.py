"""The REST API under /api/: one list of every endpoint, with the schema and its docs."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from integrations import api as integrations_api
from labeling import api as labeling_api
from review import api as review_api
from routing import api as routing_api

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    # projects, members, images, import batches
    path("projects/", labeling_api.ProjectList.as_view(), name="project-list"),
    path("projects/<slug:slug>/", labeling_api.ProjectDetail.as_view(), name="project-detail"),
    path("projects/<slug:slug>/members/", labeling_api.MemberList.as_view(), name="member-list"),
    path(
        "projects/<slug:slug>/members/<int:user_id>/",
        labeling_api.MemberDetail.as_view(),
        name="member-detail",
    ),
    path(
        "projects/<slug:slug>/accounts/", labeling_api.AccountCreate.as_view(), name="account-list"
    ),
    path(
        "projects/<slug:slug>/invitations/",
        labeling_api.InvitationList.as_view(),
        name="invitation-list",
    ),
    path(
        "invitations/<int:pk>/revoke/",
        labeling_api.InvitationRevoke.as_view(),
        name="invitation-revoke",
    ),
    path("projects/<slug:slug>/guidelines/", labeling_api.Guidelines.as_view(), name="guidelines"),
    path("projects/<slug:slug>/images/", labeling_api.ImageList.as_view(), name="image-list"),
    path(
        "projects/<slug:slug>/images/search/",
        labeling_api.ImageSearch.as_view(),
        name="image-search",
    ),
    path("images/<int:pk>/", labeling_api.ImageDetail.as_view(), name="image-detail"),
    path("images/<int:pk>/file/", labeling_api.ImageFile.as_view(), name="image-file"),
    path("projects/<slug:slug>/batches/", labeling_api.BatchList.as_view(), name="batch-list"),
    path("batches/<int:pk>/", labeling_api.BatchDetail.as_view(), name="batch-detail"),
    path("batches/<int:pk>/items/", labeling_api.BatchItems.as_view(), name="batch-items"),
    path("batches/<int:pk>/close/", labeling_api.BatchClose.as_view(), name="batch-close"),
    path("batches/<int:pk>/files/", labeling_api.BatchFiles.as_view(), name="batch-files"),
    path("projects/<slug:slug>/batches/open/", labeling_api.BatchOpen.as_view(), name="batch-open"),
    path("projects/<slug:slug>/exports/", labeling_api.ExportList.as_view(), name="export-list"),
    path("exports/<int:pk>/", labeling_api.ExportDetail.as_view(), name="export-detail"),
    path("exports/<int:pk>/cancel/", labeling_api.ExportCancel.as_view(), name="export-cancel"),
    path(
        "exports/<int:pk>/download/",
        labeling_api.ExportDownload.as_view(),
        name="export-download",
    ),
    # routes, runs, captions
    path("routes/", routing_api.RouteList.as_view(), name="route-list"),
    path("routes/<int:pk>/", routing_api.RouteDetail.as_view(), name="route-detail"),
    path("routes/<int:pk>/enable/", routing_api.RouteEnable.as_view(), name="route-enable"),
    path("routes/<int:pk>/disable/", routing_api.RouteDisable.as_view(), name="route-disable"),
    path(
        "routes/<int:pk>/breaker-reset/",
        routing_api.RouteBreakerReset.as_view(),
        name="route-breaker-reset",
    ),
    path("routes/<int:pk>/tests/", routing_api.RouteTestList.as_view(), name="route-test-list"),
    path("route-tests/<int:pk>/", routing_api.RouteTestDetail.as_view(), name="route-test-detail"),
    path("projects/<slug:slug>/runs/", routing_api.RunList.as_view(), name="run-list"),
    path(
        "projects/<slug:slug>/runs/estimate/",
        routing_api.RunEstimate.as_view(),
        name="run-estimate",
    ),
    path("runs/<int:pk>/", routing_api.RunDetail.as_view(), name="run-detail"),
    path("runs/<int:pk>/pause/", routing_api.RunPause.as_view(), name="run-pause"),
    path("runs/<int:pk>/resume/", routing_api.RunResume.as_view(), name="run-resume"),
    path("runs/<int:pk>/cancel/", routing_api.RunCancel.as_view(), name="run-cancel"),
    path(
        "runs/<int:pk>/retry-failed/",
        routing_api.RunRetryFailed.as_view(),
        name="run-retry-failed",
    ),
    path("runs/<int:pk>/budget/", routing_api.RunBudget.as_view(), name="run-budget"),
    path("runs/<int:pk>/captions/", routing_api.RunCaptions.as_view(), name="run-captions"),
    path("captions/<int:pk>/", routing_api.CaptionDetail.as_view(), name="caption-detail"),
    path("captions/<int:pk>/retry/", routing_api.CaptionRetry.as_view(), name="caption-retry"),
    path("captions/<int:pk>/stop/", routing_api.CaptionStop.as_view(), name="caption-stop"),
    path("projects/<slug:slug>/chains/", routing_api.ChainList.as_view(), name="chain-list"),
    path("chains/<int:pk>/", routing_api.ChainDetail.as_view(), name="chain-detail"),
    path(
        "projects/<slug:slug>/chain-rules/",
        routing_api.ChainRuleList.as_view(),
        name="chain-rule-list",
    ),
    path("chain-rules/<int:pk>/", routing_api.ChainRuleDetail.as_view(), name="chain-rule-detail"),
    # review
    path(
        "projects/<slug:slug>/review-items/",
        review_api.ReviewItemList.as_view(),
        name="review-item-list",
    ),
    path(
        "review-items/<int:pk>/", review_api.ReviewItemDetail.as_view(), name="review-item-detail"
    ),
    path(
        "review-items/<int:pk>/verdicts/",
        review_api.ReviewItemVerdicts.as_view(),
        name="review-item-verdicts",
    ),
    path(
        "review-items/<int:pk>/adjudicate/",
        review_api.ReviewItemAdjudicate.as_view(),
        name="review-item-adjudicate",
    ),
    path("projects/<slug:slug>/review/next/", review_api.ClaimNext.as_view(), name="claim-next"),
    path("leases/<int:pk>/verdict/", review_api.LeaseVerdict.as_view(), name="lease-verdict"),
    path("leases/<int:pk>/heartbeat/", review_api.LeaseHeartbeat.as_view(), name="lease-heartbeat"),
    path("leases/<int:pk>/release/", review_api.LeaseRelease.as_view(), name="lease-release"),
    path("verdicts/<int:pk>/undo/", review_api.VerdictUndo.as_view(), name="verdict-undo"),
    path("leases/<int:pk>/reassign/", review_api.LeaseReassign.as_view(), name="lease-reassign"),
    path("projects/<slug:slug>/leases/", review_api.ProjectLeases.as_view(), name="project-leases"),
    path(
        "projects/<slug:slug>/review/verdicts/",
        review_api.MyVerdicts.as_view(),
        name="my-verdicts",
    ),
    path(
        "projects/<slug:slug>/review/counts/",
        review_api.QueueCounts.as_view(),
        name="queue-counts",
    ),
    path(
        "projects/<slug:slug>/risk-corrections/",
        review_api.RiskCorrectionBulk.as_view(),
        name="bulk-risk-correction",
    ),
    # blind pairwise review
    path(
        "projects/<slug:slug>/pairwise/next/",
        review_api.PairwiseClaimNext.as_view(),
        name="pairwise-next",
    ),
    path(
        "pairwise-leases/<int:pk>/judge/",
        review_api.PairwiseJudge.as_view(),
        name="pairwise-lease-judge",
    ),
    path(
        "pairwise-leases/<int:pk>/pass/",
        review_api.PairwisePass.as_view(),
        name="pairwise-lease-pass",
    ),
    path(
        "projects/<slug:slug>/pairwise/pairs/",
        review_api.PairwiseCreate.as_view(),
        name="pairwise-pairs",
    ),
    path(
        "projects/<slug:slug>/pairwise/results/",
        review_api.PairwiseResults.as_view(),
        name="pairwise-results",
    ),
    path("projects/<slug:slug>/metrics/", review_api.ProjectMetrics.as_view(), name="metrics"),
    # dashboards and the side-by-side comparison (JSON and the pages' CSV)
    path(
        "projects/<slug:slug>/dashboard/<str:plot>/",
        review_api.DashboardPlot.as_view(),
        name="dashboard-plot",
    ),
    path(
        "projects/<slug:slug>/dashboard/<str:plot>/csv/",
        review_api.DashboardPlotCSV.as_view(),
        name="dashboard-plot-csv",
    ),
    path(
        "projects/<slug:slug>/comparison/csv/",
        review_api.ComparisonCSV.as_view(),
        name="comparison-csv",
    ),
    path(
        "projects/<slug:slug>/comparison/images/",
        review_api.SideBySide.as_view(),
        name="comparison-images",
    ),
    path(
        "projects/<slug:slug>/comparison/images/csv/",
        review_api.SideBySideCSV.as_view(),
        name="comparison-images-csv",
    ),
    path(
        "projects/<slug:slug>/review-policy/",
        review_api.ReviewPolicyDetail.as_view(),
        name="review-policy",
    ),
    path(
        "images/<int:pk>/risk-corrections/",
        review_api.RiskCorrectionCreate.as_view(),
        name="risk-correction",
    ),
    # API tokens and webhooks
    path("tokens/", integrations_api.ApiTokenList.as_view(), name="token-list"),
    path("tokens/<int:pk>/revoke/", integrations_api.ApiTokenRevoke.as_view(), name="token-revoke"),
    path(
        "projects/<slug:slug>/webhooks/",
        integrations_api.WebhookList.as_view(),
        name="webhook-list",
    ),
    path("webhooks/<int:pk>/", integrations_api.WebhookDetail.as_view(), name="webhook-detail"),
    path(
        "webhooks/<int:pk>/deliveries/",
        integrations_api.WebhookDeliveries.as_view(),
        name="webhook-deliveries",
    ),
    path("webhooks/<int:pk>/test/", integrations_api.WebhookTest.as_view(), name="webhook-test"),
]
