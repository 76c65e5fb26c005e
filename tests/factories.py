"""factory_boy factories. Values that tests assert on are passed explicitly by the tests."""

from __future__ import annotations

import hashlib
import io

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from labeling.models import Image, Membership, Project
from routing.models import Caption, Route


def png_bytes(seed: int, size: tuple[int, int] = (32, 24)) -> bytes:
    img = PILImage.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ANNOTATOR


class ImageFactory(factory.django.DjangoModelFactory):
    """An Image row with a real (tiny) PNG behind it. For ingestion behaviour use the service."""

    class Meta:
        model = Image

    class Params:
        seed = factory.Sequence(lambda n: n)

    project = factory.SubFactory(ProjectFactory)
    file = factory.LazyAttribute(lambda o: ContentFile(png_bytes(o.seed), name=f"img{o.seed}.png"))
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(f"image-{o.seed}".encode()).hexdigest())
    phash = factory.LazyAttribute(lambda o: o.seed)
    width = 32
    height = 24
    format = "PNG"
    mode = "RGB"
    byte_size = 100
    original_name = factory.LazyAttribute(lambda o: f"img{o.seed}.png")
    source = Image.Source.UPLOAD


class RouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Route

    name = factory.Sequence(lambda n: f"route-{n}")
    provider = Route.Provider.EDENAI
    model = "openai/gpt-4o"


class CaptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Caption

    image = factory.SubFactory(ImageFactory)
    origin = Caption.Origin.IMPORTED
    model_name = "blip2-opt-2.7b"
    prompt = "Describe this image in one sentence."
    status = Caption.Status.SUCCEEDED
    text = factory.Sequence(lambda n: f"A photo of thing number {n}.")
