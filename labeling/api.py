"""The labeling part of the REST API: projects, members, images (upload, list, detail), import
batches. Thin: check the role, call the same services and selectors as the pages."""

from __future__ import annotations

from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, generics, serializers, status
from rest_framework.pagination import BasePagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from integrations.api_common import (
    NoFilters,
    OldestFirstCursorPagination,
    filters_from,
    model_errors,
    object_or_404,
    project_or_404,
)
from labeling import search, selectors
from labeling.forms import GuidelinesForm, InviteForm, RoleForm, UserCreateForm
from labeling.markdown import markdown_render
from labeling.models import (
    Export,
    Image,
    ImportBatch,
    ImportItem,
    Invitation,
    Membership,
    Project,
    RiskCategory,
)
from labeling.search import MAX_QUERY_CHARS
from labeling.services import batches as batch_services
from labeling.services import team
from labeling.services.projects import (
    ProjectError,
    member_add,
    member_remove,
    member_set_role,
    project_create,
    project_guidelines_save,
)

# --- serializers ----------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role: admin or annotator.")
    image_count = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "slug", "name", "caption_prompt", "task_type", "created_at", "role"]
        fields += ["image_count"]
        read_only_fields = fields

    def get_role(self, project: Project) -> str | None:
        return selectors.project_role(project=project, user=self.context["request"].user)

    def get_image_count(self, project: Project) -> int:
        # Lists annotate it in SQL (project_list_for); a single project counts once.
        annotated = getattr(project, "image_count", None)
        return annotated if annotated is not None else project.images.count()


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True, default="")
    caption_prompt = serializers.CharField(required=False, allow_blank=True, default="")


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user_id", "username", "role", "created_at"]
        read_only_fields = fields


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class ImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Image
        fields = [
            "id",
            "project_id",
            "batch_id",
            "original_name",
            "width",
            "height",
            "format",
            "status",
            "near_duplicate_of_id",
            "near_duplicate_distance",
        ]
        read_only_fields = fields


class FlagSerializer(serializers.Serializer):
    category = serializers.CharField()
    label = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    reason = serializers.CharField()
    corrected = serializers.BooleanField(help_text="An admin's correction, not the analyser.")


class ImageCaptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    origin = serializers.CharField()
    status = serializers.CharField()
    text = serializers.CharField()
    model_name = serializers.CharField(help_text="Empty when the review policy hides models.")
    created_at = serializers.DateTimeField()


class ApprovedTextSerializer(serializers.Serializer):
    caption_id = serializers.IntegerField()
    text = serializers.CharField()
    edited = serializers.BooleanField()
    adjudicated = serializers.BooleanField()
    decided_at = serializers.DateTimeField(allow_null=True)


class ImageDetailSerializer(ImageSerializer):
    """Needs ``show_models`` in its context: whether model names may be shown to this user."""

    flags = serializers.SerializerMethodField()
    captions = serializers.SerializerMethodField()
    approved = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = [
            *ImageSerializer.Meta.fields,
            "sha256",
            "mode",
            "byte_size",
            "source",
            "source_detail",
            "created_at",
            "flags",
            "captions",
            "approved",
        ]
        read_only_fields = fields

    @extend_schema_field(FlagSerializer(many=True))
    def get_flags(self, image: Image) -> list[dict]:
        from review.selectors import image_risk_flags

        return FlagSerializer(image_risk_flags(image=image), many=True).data

    @extend_schema_field(ImageCaptionSerializer(many=True))
    def get_captions(self, image: Image) -> list[dict]:
        from review.risk.captions import RISK_QUESTION

        show = self.context["show_models"]
        # Every output of the project's task; not the risk analyser's own question to the model.
        captions = image.captions.exclude(task="question", prompt=RISK_QUESTION).order_by("id")
        captions = captions[:100]
        return [
            {
                "id": c.pk,
                "origin": c.origin,
                "status": c.status,
                "text": c.text,
                "model_name": c.model_name if show else "",
                "created_at": c.created_at,
            }
            for c in captions
        ]

    @extend_schema_field(ApprovedTextSerializer(many=True))
    def get_approved(self, image: Image) -> list[dict]:
        from review.selectors import image_approved_texts

        return ApprovedTextSerializer(image_approved_texts(image=image), many=True).data


class ImageFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Image.Status.choices, required=False)
    batch = serializers.IntegerField(required=False, min_value=1)
    near_duplicates = serializers.BooleanField(required=False)
    risk = serializers.ChoiceField(
        choices=[("any", "Flagged in any category"), *RiskCategory.choices], required=False
    )
    near_threshold = serializers.BooleanField(required=False)


class BatchSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "project_id",
            "kind",
            "status",
            "label",
            "expected",
            "total",
            "imported",
            "duplicates",
            "rejected",
            "error",
            "progress_percent",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class ImportItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportItem
        fields = ["id", "source", "status", "reason", "image_id"]
        read_only_fields = fields


class ImportItemFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=ImportItem.Status.choices, required=False)


class UploadSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(), min_length=1, help_text="One or many image files."
    )


# --- projects and members -------------------------------------------------------------------


class ProjectList(generics.ListCreateAPIView):
    """Projects you are a member of (every project for site admins); site admins create."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        filters_from(self.request, NoFilters)
        return selectors.project_list_for(user=self.request.user)

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def post(self, request: Request) -> Response:
        if not selectors.user_is_admin(request.user):
            raise exceptions.PermissionDenied("Only site admins create projects.")
        ser = ProjectCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            project = project_create(created_by=request.user, **ser.validated_data)
        except ProjectError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        out = ProjectSerializer(project, context={"request": request})
        return Response(out.data, status=status.HTTP_201_CREATED)


class ProjectDetail(generics.GenericAPIView):
    serializer_class = ProjectSerializer

    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug)
        return Response(ProjectSerializer(project, context={"request": request}).data)


class MemberList(generics.ListCreateAPIView):
    """A project's members (project admins), who add members or change a member's role."""

    serializer_class = MemberSerializer
    pagination_class = OldestFirstCursorPagination

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters_from(self.request, NoFilters)
        return project.memberships.select_related("user")

    @extend_schema(request=MemberAddSerializer, responses={201: MemberSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        ser = MemberAddSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            membership = member_add(project=project, **ser.validated_data)
        except ProjectError as exc:
            raise exceptions.ValidationError({"username": [str(exc)]}) from exc
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class MemberDetail(generics.GenericAPIView):
    serializer_class = MemberSerializer

    @extend_schema(request=MemberRoleSerializer, responses={200: MemberSerializer})
    def patch(self, request: Request, slug: str, user_id: int) -> Response:
        """Change a member's role, through the team page's form and service: the project's last
        admin cannot become an annotator (400 with the reason)."""
        project, _ = project_or_404(request, slug, admin=True)
        member = project.memberships.select_related("user").filter(user_id=user_id).first()
        if member is None:
            raise exceptions.NotFound("No such member.")
        ser = MemberRoleSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        form = RoleForm({"user": user_id, "role": ser.validated_data["role"]})
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            membership = member_set_role(
                project=project, user=member.user, role=form.cleaned_data["role"]
            )
        except ProjectError as exc:  # the project's last admin stays one
            raise exceptions.ValidationError({"detail": str(exc)}) from exc
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, user_id: int) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        if not project.memberships.filter(user_id=user_id).exists():
            raise exceptions.NotFound("No such member.")
        try:
            member_remove(project=project, user_id=user_id)
        except ProjectError as exc:  # the project's last admin stays
            raise exceptions.ValidationError({"detail": str(exc)}) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    email = serializers.EmailField(
        required=False,
        allow_blank=True,
        default="",
        help_text="The set-password link is emailed here when no password is given.",
    )
    role = serializers.ChoiceField(choices=Membership.Role.choices, default="annotator")
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        style={"input_type": "password"},
        help_text="Empty: the account has no password until its owner opens the link returned.",
    )


class AccountCreatedSerializer(MemberSerializer):
    set_password_link = serializers.URLField(
        allow_null=True,
        help_text="The single-use link to choose a password (no password given), shown this "
        "once: only its hash is stored. Null when a password was given.",
    )
    email_status = serializers.CharField(
        allow_null=True, help_text='"sent", "no address", or why sending the email failed.'
    )

    class Meta(MemberSerializer.Meta):
        fields = [*MemberSerializer.Meta.fields, "set_password_link", "email_status"]
        read_only_fields = fields


class AccountCreate(generics.GenericAPIView):
    """Create an account and add it to the project (project admins), as the team page does:
    with a password (checked by the password validators), or without one, and then the
    single-use set-password link is returned once (and emailed when there is an address)."""

    serializer_class = AccountCreatedSerializer

    @extend_schema(request=AccountRequestSerializer, responses={201: AccountCreatedSerializer})
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        ser = AccountRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        # The team page's form (prefix "create"), so both accept exactly the same input.
        form = UserCreateForm({f"create-{k}": v for k, v in ser.validated_data.items()})
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            membership, issued = team.user_create(
                project=project, created_by=request.user, **form.cleaned_data
            )
        except ProjectError as exc:  # username taken, weak password
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        membership.set_password_link = membership.email_status = None
        if issued is not None:
            link = request.build_absolute_uri(
                reverse("labeling:invitation-accept", kwargs={"token": issued.token})
            )
            membership.set_password_link = link  # shown this once
            membership.email_status = team.invitation_send(issued=issued, url=link)
        return Response(AccountCreatedSerializer(membership).data, status=status.HTTP_201_CREATED)


# --- images ---------------------------------------------------------------------------------


def _show_models(request: Request, project: Project, role: str) -> bool:
    """Admins always see which model wrote a caption; annotators when the policy says so."""
    from review.selectors import review_policy_for

    if role == Membership.Role.ADMIN:
        return True
    return review_policy_for(project=project).show_model_name


class ImageList(generics.ListCreateAPIView):
    """A project's images, newest first; project admins upload one or many files."""

    serializer_class = ImageSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=Image.Status.values),
            OpenApiParameter("batch", OpenApiTypes.INT),
            OpenApiParameter("near_duplicates", OpenApiTypes.BOOL),
            OpenApiParameter(
                "risk",
                OpenApiTypes.STR,
                enum=["any", *RiskCategory.values],
                description="Images flagged in this risk category (an admin's correction "
                "winning), or in any.",
            ),
            OpenApiParameter(
                "near_threshold",
                OpenApiTypes.BOOL,
                description="Images whose risk score lies near the flag threshold (of the "
                "chosen category, or any), as the grid's filter.",
            ),
        ]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"])
        filters = filters_from(self.request, ImageFilters)
        images = selectors.image_list(
            project=project,
            status=filters.get("status", ""),
            batch_id=filters.get("batch"),
            near_duplicates=bool(filters.get("near_duplicates")),
        )
        risk = filters.get("risk", "")
        if risk or filters.get("near_threshold"):
            from review.selectors import images_by_risk

            images = images_by_risk(
                images,
                project=project,
                category="" if risk == "any" else risk,
                near_threshold=bool(filters.get("near_threshold")),
            )
        return images

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={
            201: inline_serializer(
                "UploadResult",
                {
                    "batch": BatchSerializer(),
                    "results": ImportItemSerializer(many=True),
                },
            )
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        files = request.FILES.getlist("files")
        ser = UploadSerializer(data={"files": files})
        ser.is_valid(raise_exception=True)
        batch = batch_services.batch_upload_files(project=project, user=request.user, files=files)
        batch.refresh_from_db()
        return Response(
            {
                "batch": BatchSerializer(batch).data,
                "results": ImportItemSerializer(batch.items.order_by("id"), many=True).data,
            },
            status=status.HTTP_201_CREATED,
        )


class ImageDetail(generics.GenericAPIView):
    """One image with its risk flags, captions and approved texts."""

    serializer_class = ImageDetailSerializer

    def get(self, request: Request, pk: int) -> Response:
        image = object_or_404(request, Image.objects.select_related("project"), pk=pk)
        role = selectors.project_role(project=image.project, user=request.user)
        context = {"show_models": _show_models(request, image.project, role)}
        return Response(ImageDetailSerializer(image, context=context).data)


class ImageFileFilters(serializers.Serializer):
    size = serializers.ChoiceField(choices=["display", "large", "small"], required=False)


class ImageFile(generics.GenericAPIView):
    """The picture the pages show (project members): ``display`` (the review screen's, default),
    or the grid's ``large`` or ``small`` thumbnail. A missing one is made now, as the pages do."""

    serializer_class = ImageFileFilters

    @extend_schema(
        parameters=[OpenApiParameter("size", OpenApiTypes.STR, enum=["display", "large", "small"])],
        responses={
            (200, "image/webp"): OpenApiTypes.BINARY,
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
        },
    )
    def get(self, request: Request, pk: int) -> FileResponse:
        from labeling.services import derivatives

        image = object_or_404(request, Image.objects.select_related("project"), pk=pk)
        size = filters_from(request, ImageFileFilters).get("size", "display")
        try:
            if size == "display" and image.display:
                stored = image.display
            else:
                if size == "display":
                    derivatives.image_display_request(image=image)
                if not (image.thumb_small and image.thumb_large) or size == "display":
                    derivatives.image_make_derivatives(image=image)
                stored = image.thumb_small if size == "small" else image.thumb_large
            response = FileResponse(
                stored.open("rb"), content_type=derivatives.display_content_type(stored.name)
            )
        except derivatives.DerivativeFailed as exc:
            raise exceptions.NotFound(f"No preview: {exc.reason}") from exc
        except OSError as exc:
            raise exceptions.NotFound("The image file is missing from storage.") from exc
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response


# --- import batches -------------------------------------------------------------------------


class BatchRequestSerializer(serializers.Serializer):
    """A zip archive or a list of URLs, processed by a worker (poll the batch for progress)."""

    archive = serializers.FileField(required=False, help_text="A zip archive of images.")
    urls = serializers.CharField(
        required=False, help_text="One URL per line; lines starting with # are ignored."
    )
    predictions = serializers.FileField(
        required=False,
        help_text="Captions made elsewhere, to review: Label Studio tasks with predictions (JSON "
        "or JSONL) or JSON Lines with image, caption and model; alone (images by URL) or in a "
        "zip with the images it names.",
    )

    def validate(self, data: dict) -> dict:
        sent = [k for k in ("archive", "urls", "predictions") if data.get(k)]
        if len(sent) != 1:
            raise serializers.ValidationError("Send one of archive, urls or predictions.")
        return data


class BatchList(generics.ListCreateAPIView):
    """A project's import batches, newest first; project admins start a zip, URL-list or
    predictions import (one file or many: POST them to the project's images)."""

    serializer_class = BatchSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"])
        filters_from(self.request, NoFilters)
        return project.batches.all()

    @extend_schema(
        request={
            "multipart/form-data": BatchRequestSerializer,
            "application/json": BatchRequestSerializer,
        },
        responses={202: BatchSerializer},
    )
    def post(self, request: Request, slug: str) -> Response:
        from labeling.forms import PredictionsForm, UrlListForm, ZipForm

        project, _ = project_or_404(request, slug, admin=True)
        ser = BatchRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        if ser.validated_data.get("predictions"):
            # The import page's predictions form: the same files are accepted.
            form = PredictionsForm({}, {"file": ser.validated_data["predictions"]})
            if not form.is_valid():
                raise model_errors(form.errors)
            batch = batch_services.batch_create_from_predictions(
                project=project, user=request.user, upload=form.cleaned_data["file"]
            )
        elif ser.validated_data.get("archive"):
            form = ZipForm({}, {"archive": ser.validated_data["archive"]})
            if not form.is_valid():
                raise model_errors(form.errors)
            batch = batch_services.batch_create_from_zip(
                project=project, user=request.user, archive=form.cleaned_data["archive"]
            )
        else:
            form = UrlListForm({"urls": ser.validated_data["urls"]})
            if not form.is_valid():
                raise model_errors(form.errors)
            batch = batch_services.batch_create_from_urls(
                project=project, user=request.user, text=form.cleaned_data["urls"]
            )
        return Response(BatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)


class BatchDetail(generics.GenericAPIView):
    """An import batch's status and counters (poll it while a zip or URL list is processed)."""

    serializer_class = BatchSerializer

    def get(self, request: Request, pk: int) -> Response:
        batch = object_or_404(request, ImportBatch.objects.select_related("project"), pk=pk)
        return Response(BatchSerializer(batch).data)


class BatchOpenSerializer(serializers.Serializer):
    expected = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=10_000_000,
        help_text="How many files you will send (drives the progress figure only).",
    )


class BatchOpen(generics.GenericAPIView):
    """Open an upload batch (project admins), as the upload page does before sending its files
    one request at a time: POST them to ``/api/batches/<id>/files/``, then close it."""

    serializer_class = BatchSerializer

    @extend_schema(request=BatchOpenSerializer, responses={201: BatchSerializer})
    def post(self, request: Request, slug: str) -> Response:
        from labeling.services.ingest import batch_create

        project, _ = project_or_404(request, slug, admin=True)
        ser = BatchOpenSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        batch = batch_create(
            project=project,
            kind=ImportBatch.Kind.UPLOAD,
            user=request.user,
            expected=ser.validated_data.get("expected") or None,
        )
        return Response(BatchSerializer(batch).data, status=status.HTTP_201_CREATED)


class FileOutcomeSerializer(serializers.Serializer):
    source = serializers.CharField()
    status = serializers.ChoiceField(choices=ImportItem.Status.choices)
    reason = serializers.CharField(allow_blank=True)
    image_id = serializers.IntegerField(allow_null=True)
    near_duplicate_of = serializers.IntegerField(allow_null=True)


class BatchFilesConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "closed"


class BatchFiles(generics.GenericAPIView):
    """Add files to an open upload batch (project admins): each file's outcome (imported,
    duplicate, or rejected with the reason). 409 once the batch is closed or is not an upload."""

    serializer_class = FileOutcomeSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={200: FileOutcomeSerializer(many=True)},
    )
    def post(self, request: Request, pk: int) -> Response:
        batch = object_or_404(
            request, ImportBatch.objects.select_related("project"), pk=pk, admin=True
        )
        if batch.kind != ImportBatch.Kind.UPLOAD or batch.status in (
            ImportBatch.Status.DONE,
            ImportBatch.Status.FAILED,
        ):
            raise BatchFilesConflict("This batch no longer accepts files.")
        files = request.FILES.getlist("files")
        ser = UploadSerializer(data={"files": files})
        ser.is_valid(raise_exception=True)
        outcomes = batch_services.batch_add_uploads(batch=batch, files=files)
        return Response(FileOutcomeSerializer([o.as_json() for o in outcomes], many=True).data)


class BatchClose(generics.GenericAPIView):
    """Close an import batch (project admins), as the upload page does once its last file is
    sent: the batch is marked done (finished now) and its counters stop moving. Closing a
    batch that is already done changes nothing."""

    serializer_class = BatchSerializer

    @extend_schema(request=None, responses={200: BatchSerializer})
    def post(self, request: Request, pk: int) -> Response:
        batch = object_or_404(
            request, ImportBatch.objects.select_related("project"), pk=pk, admin=True
        )
        batch_services.batch_close(batch=batch)
        batch.refresh_from_db()
        return Response(BatchSerializer(batch).data)


class BatchItems(generics.ListAPIView):
    """Every file's outcome in a batch: imported, duplicate or rejected with the reason."""

    serializer_class = ImportItemSerializer
    pagination_class = OldestFirstCursorPagination

    @extend_schema(
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=ImportItem.Status.values)]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        batch = object_or_404(
            self.request, ImportBatch.objects.select_related("project"), pk=self.kwargs["pk"]
        )
        filters = filters_from(self.request, ImportItemFilters)
        return selectors.batch_items(batch=batch, status=filters.get("status", ""))


# --- search ---------------------------------------------------------------------------------


class SearchFilters(serializers.Serializer):
    q = serializers.CharField(
        max_length=MAX_QUERY_CHARS,
        help_text='Words, "quoted phrases", OR, and -word to exclude (PostgreSQL).',
    )


class ImageSearchResultSerializer(ImageSerializer):
    rank = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text="Higher is better; null when results are newest first (a broad query, or a "
        "database without full-text search).",
    )

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "rank"]
        read_only_fields = fields


class SearchCursorPagination(BasePagination):
    """Keyset pages, best first over (rank, id), or newest first over id when more images match
    than are ranked (``labeling.search.BROAD_MATCHES``): a cursor names the last row seen and
    its order, so pages stay right while images and captions are added."""

    page_size = 50
    max_page_size = 200

    def paginate_search(self, request: Request, *, project: Project, query: str) -> list[Image]:
        self.request = request
        try:
            size = int(request.query_params.get("page_size", self.page_size))
        except ValueError as exc:
            raise exceptions.ValidationError({"page_size": ["A whole number."]}) from exc
        size = max(1, min(size, self.max_page_size))
        cursor = None
        if request.query_params.get("cursor"):
            try:
                cursor = search.Cursor.decode(request.query_params["cursor"])
            except search.BadCursor as exc:
                raise exceptions.ValidationError(
                    {"cursor": ["Not a cursor from this API."]}
                ) from exc
        self.page = search.image_search_page(project=project, query=query, size=size, cursor=cursor)
        return self.page.images

    def paginate_queryset(self, queryset, request: Request, view=None):  # pragma: no cover
        raise NotImplementedError("search pages come from paginate_search")

    def get_paginated_response(self, data) -> Response:
        url = None
        if self.page.next_cursor:
            url = replace_query_param(
                self.request.build_absolute_uri(), "cursor", self.page.next_cursor.encode()
            )
        return Response(
            {
                "next": url,
                "order": self.page.order,
                "matches": self.page.matches,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["order", "matches", "results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "order": {
                    "type": "string",
                    "enum": [search.RANK, search.NEWEST],
                    "description": "rank: best first, every match ranked. newest: more images "
                    f"match than are ranked (over {search.BROAD_MATCHES:,}; add words to narrow "
                    "the query), or no full-text search.",
                },
                "matches": {
                    "type": "integer",
                    "nullable": True,
                    "description": "How many images match, on a query's first page; null "
                    "on later pages, and when newest first because the query is broad.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "page_size", "in": "query", "required": False, "schema": {"type": "integer"}},
        ]


class ImageSearch(generics.ListAPIView):
    """Images of a project matching a query, best first: approved captions count most, then
    model captions, file name and metadata (PostgreSQL full-text search). A query that matches
    more images than are ranked is answered newest first (``order``: ``newest``)."""

    serializer_class = ImageSearchResultSerializer
    pagination_class = SearchCursorPagination

    @extend_schema(
        parameters=[OpenApiParameter("q", OpenApiTypes.STR, required=True)],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return Image.objects.none()  # pages come from labeling.search (see list)

    def list(self, request: Request, *args, **kwargs) -> Response:
        project, _ = project_or_404(request, self.kwargs["slug"])
        filters = filters_from(request, SearchFilters)
        images = self.paginator.paginate_search(request, project=project, query=filters["q"])
        return self.paginator.get_paginated_response(self.get_serializer(images, many=True).data)


# --- exports --------------------------------------------------------------------------------


class ExportSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    download_url = serializers.SerializerMethodField(help_text="Set once the file is ready.")

    class Meta:
        model = Export
        fields = [
            "id",
            "project_id",
            "format",
            "status",
            "options",
            "total",
            "done",
            "progress_percent",
            "rows",
            "file_name",
            "byte_size",
            "sha256",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, export: Export) -> str | None:
        if export.status != Export.Status.DONE or not export.file:
            return None
        request = self.context.get("request")
        url = reverse("api:export-download", args=[export.pk])
        return request.build_absolute_uri(url) if request else url


class ExportRequestSerializer(serializers.Serializer):
    """The export page's form, as JSON."""

    format = serializers.ChoiceField(choices=["jsonl", "csv", "coco", "hf", "labelstudio"])
    include = serializers.ChoiceField(choices=["approved", "reviewed"], default="approved")
    images = serializers.ChoiceField(choices=["url", "bundle"], default="url")
    variant = serializers.ChoiceField(choices=["display", "original"], default="display")
    provenance = serializers.BooleanField(default=False)
    parquet = serializers.BooleanField(default=False, help_text="Hugging Face only.")
    run = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    route = serializers.CharField(required=False, allow_blank=True, max_length=100)
    model = serializers.CharField(required=False, allow_blank=True, max_length=200)
    decided_from = serializers.DateField(required=False, allow_null=True)
    decided_to = serializers.DateField(required=False, allow_null=True)
    risk = serializers.CharField(required=False, allow_blank=True, max_length=20)
    decision = serializers.ChoiceField(
        choices=["", "accepted", "edited", "rejected"], required=False, allow_blank=True
    )
    batch = serializers.IntegerField(required=False, allow_null=True, min_value=1)


def _export(request: Request, pk: int) -> Export:
    return object_or_404(request, Export.objects.select_related("project"), pk=pk, admin=True)


class ExportList(generics.ListCreateAPIView):
    """A project's exports (project admins), newest first; POST starts one in a worker."""

    serializer_class = ExportSerializer

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters_from(self.request, NoFilters)
        return project.exports.all()

    @extend_schema(request=ExportRequestSerializer, responses={201: ExportSerializer})
    def post(self, request: Request, slug: str) -> Response:
        from labeling.forms import ExportForm
        from labeling.services import export as export_services
        from labeling.views import _spec_from_form

        project, _ = project_or_404(request, slug, admin=True)
        ser = ExportRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = {k: v for k, v in ser.validated_data.items() if v not in (None, False)}
        form = ExportForm(data)
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            spec = _spec_from_form(form, request.build_absolute_uri("/").rstrip("/"))
        except export_services.ExportInvalid as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        export = export_services.export_create(project=project, user=request.user, spec=spec)
        out = ExportSerializer(export, context={"request": request})
        return Response(out.data, status=status.HTTP_201_CREATED)


class ExportDetail(generics.GenericAPIView):
    """An export's status and progress (poll it); ``download_url`` once the file is ready."""

    serializer_class = ExportSerializer

    def get(self, request: Request, pk: int) -> Response:
        return Response(ExportSerializer(_export(request, pk), context={"request": request}).data)


class ExportCancel(generics.GenericAPIView):
    serializer_class = ExportSerializer

    @extend_schema(request=None, responses={200: ExportSerializer})
    def post(self, request: Request, pk: int) -> Response:
        from labeling.services import export as export_services

        export = _export(request, pk)
        if not export_services.export_cancel(export=export):
            raise exceptions.ValidationError({"non_field_errors": ["This export already ended."]})
        return Response(ExportSerializer(export, context={"request": request}).data)


class ExportDownload(generics.GenericAPIView):
    """The export's file, as the export page serves it."""

    serializer_class = ExportSerializer

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, pk: int) -> FileResponse:
        export = _export(request, pk)
        if export.status != Export.Status.DONE or not export.file:
            raise exceptions.NotFound("This export has no file yet.")
        response = FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=export.file_name,
            content_type="application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response


# --- invitations and guidelines -------------------------------------------------------------


class InvitationSerializer(serializers.ModelSerializer):
    username = serializers.SerializerMethodField(
        help_text="The account it sets a password for, when an admin created one."
    )
    state = serializers.SerializerMethodField(help_text="open, accepted, revoked or expired.")

    class Meta:
        model = Invitation
        fields = [
            "id",
            "project_id",
            "email",
            "username",
            "role",
            "state",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]
        read_only_fields = fields

    def get_username(self, invitation: Invitation) -> str:
        return invitation.user.get_username() if invitation.user_id else ""

    def get_state(self, invitation: Invitation) -> str:
        if invitation.accepted_at is not None:
            return "accepted"
        if invitation.revoked_at is not None:
            return "revoked"
        return "expired" if invitation.expires_at <= timezone.now() else "open"


class InvitationCreatedSerializer(InvitationSerializer):
    link = serializers.URLField(
        help_text="The invitation link. Shown this once: only its hash is stored."
    )
    email_status = serializers.CharField(
        help_text='"sent", "no address", or why sending the email failed.'
    )

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "link", "email_status"]
        read_only_fields = fields


class InvitationRequestSerializer(serializers.Serializer):
    email = serializers.EmailField(help_text="They choose their own username and password.")
    role = serializers.ChoiceField(choices=Membership.Role.choices, default="annotator")


class InvitationFilters(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=["open", "accepted", "revoked", "expired"], required=False
    )


class InvitationList(generics.ListCreateAPIView):
    """A project's invitations, newest first (project admins). POST invites someone by email, as
    the team page does: the link is emailed and returned once; only its hash is stored."""

    serializer_class = InvitationSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "state", OpenApiTypes.STR, enum=["open", "accepted", "revoked", "expired"]
            )
        ]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        project, _ = project_or_404(self.request, self.kwargs["slug"], admin=True)
        filters = filters_from(self.request, InvitationFilters)
        return selectors.invitations_for_project(project=project, state=filters.get("state", ""))

    @extend_schema(
        request=InvitationRequestSerializer, responses={201: InvitationCreatedSerializer}
    )
    def post(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        ser = InvitationRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        # The team page's form (prefix "invite"), so both accept exactly the same input.
        form = InviteForm({f"invite-{k}": v for k, v in ser.validated_data.items()})
        if not form.is_valid():
            raise model_errors(form.errors)
        try:
            issued = team.invitation_create(
                project=project, created_by=request.user, **form.cleaned_data
            )
        except ProjectError as exc:
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        link = request.build_absolute_uri(
            reverse("labeling:invitation-accept", kwargs={"token": issued.token})
        )
        sent = team.invitation_send(issued=issued, url=link)
        invitation = issued.invitation
        invitation.link, invitation.email_status = link, sent  # shown this once
        return Response(
            InvitationCreatedSerializer(invitation).data, status=status.HTTP_201_CREATED
        )


class InvitationRevoke(generics.GenericAPIView):
    """Make an invitation's link stop working at once (project admins); 400 if it was already
    used or revoked."""

    serializer_class = InvitationSerializer

    @extend_schema(request=None, responses={200: InvitationSerializer})
    def post(self, request: Request, pk: int) -> Response:
        invitation = object_or_404(
            request, Invitation.objects.select_related("project", "user"), pk=pk, admin=True
        )
        if not team.invitation_revoke(invitation=invitation):
            raise exceptions.ValidationError(
                {"non_field_errors": ["That invitation was already used or revoked."]}
            )
        invitation.refresh_from_db()
        return Response(InvitationSerializer(invitation).data)


class GuidelinesSerializer(serializers.Serializer):
    markdown = serializers.CharField(
        allow_blank=True, max_length=20_000, help_text="The guidelines as their admins wrote them."
    )
    html = serializers.CharField(
        read_only=True,
        help_text="Rendered as the review screen shows them: raw HTML off, sanitised (nh3).",
    )


class Guidelines(generics.GenericAPIView):
    """The project's reviewer guidelines (Markdown): every member reads them, project admins
    replace them with PUT (the guidelines page's form and service)."""

    serializer_class = GuidelinesSerializer

    @staticmethod
    def _out(project: Project) -> dict[str, str]:
        return {"markdown": project.guidelines, "html": str(markdown_render(project.guidelines))}

    def get(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug)
        return Response(GuidelinesSerializer(self._out(project)).data)

    @extend_schema(request=GuidelinesSerializer, responses={200: GuidelinesSerializer})
    def put(self, request: Request, slug: str) -> Response:
        project, _ = project_or_404(request, slug, admin=True)
        ser = GuidelinesSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        form = GuidelinesForm({"guidelines": ser.validated_data["markdown"]})
        if not form.is_valid():
            raise model_errors(form.errors)
        project = project_guidelines_save(project=project, text=form.cleaned_data["guidelines"])
        return Response(GuidelinesSerializer(self._out(project)).data)
