from django.urls import path

from . import views

app_name = "labeling"

urlpatterns = [
    path("projects/", views.project_list, name="project-list"),
    path("projects/new/", views.project_create_view, name="project-create"),
    path("projects/<slug:slug>/", views.project_detail, name="project-detail"),
    path("projects/<slug:slug>/members/", views.project_members, name="project-members"),
    path("projects/<slug:slug>/guidelines/", views.project_guidelines, name="project-guidelines"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("projects/<slug:slug>/import/", views.import_page, name="import"),
    path("projects/<slug:slug>/import/upload/", views.import_upload, name="import-upload"),
    path("projects/<slug:slug>/import/zip/", views.import_zip, name="import-zip"),
    path("projects/<slug:slug>/import/urls/", views.import_urls, name="import-urls"),
    path(
        "projects/<slug:slug>/import/predictions/",
        views.import_predictions,
        name="import-predictions",
    ),
    path("projects/<slug:slug>/import/batches/", views.batch_open, name="batch-open"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/progress/", views.batch_progress, name="batch-progress"),
    path("batches/<int:pk>/files/", views.batch_files, name="batch-files"),
    path("batches/<int:pk>/close/", views.batch_close, name="batch-close"),
    path("projects/<slug:slug>/export/", views.export_list, name="export-list"),
    path("exports/<int:pk>/", views.export_detail, name="export-detail"),
    path("exports/<int:pk>/progress/", views.export_progress, name="export-progress"),
    path("exports/<int:pk>/cancel/", views.export_cancel, name="export-cancel"),
    path("exports/<int:pk>/download/", views.export_download, name="export-download"),
    path("images/<int:pk>/", views.image_detail, name="image-detail"),
    path("images/<int:pk>/thumb/<str:size>/", views.image_thumb, name="image-thumb"),
    path("images/<int:pk>/display/", views.image_display, name="image-display"),
]
