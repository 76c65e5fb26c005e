"""Each provider says what it accepts, and a request is fitted to that before the call: images the
vendor would refuse are re-encoded, parameters out of its range are clamped or dropped. The fakes
refuse what the vendors refuse, so every story checks both sides."""

from __future__ import annotations

import io
import os
from decimal import Decimal

import pytest
from PIL import Image

from routing.providers import BadRequest, CaptionRequest, ProviderCapabilities, get_provider
from routing.providers.http import data_url
from routing.providers.prepare import prepare_request
from tests.routing.providers.conftest import API_KEY


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def photo(width: int = 640, height: int = 480) -> Image.Image:
    """Noise compresses badly, like a detailed photograph."""
    return Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def edenai_v2(fake):
    return get_provider("edenai_v2", {"base_url": fake.url, "api_key": API_KEY})


def blip2(fake):
    return get_provider(
        "replicate",
        {"base_url": fake.url, "api_key": API_KEY, "usd_per_second": "0.000725"},
    )


# --- what each client declares -----------------------------------------------------------------


def test_each_client_declares_what_its_vendor_takes():
    v2 = get_provider("edenai_v2", {"api_key": "k"}).capabilities
    assert v2.image_mime_types == {"image/jpeg", "image/png"}
    assert v2.param_ranges == {"temperature": (0.0, 1.0), "max_new_tokens": (1, 2048)}

    gpt = get_provider("edenai", {"api_key": "k", "model": "openai/gpt-4o"}).capabilities
    assert gpt.image_mime_types == {"image/png", "image/jpeg", "image/gif", "image/webp"}
    assert gpt.max_image_bytes == 20 * 1024 * 1024

    replicate = get_provider("replicate", {"api_key": "k"}).capabilities
    assert replicate.max_image_bytes == 256 * 1024
    assert replicate.param_ranges["temperature"] == (0.5, 1.0)
    assert "max_new_tokens" not in replicate.params

    ollama = get_provider("ollama", {}).capabilities
    assert ollama.image_mime_types == {"image/jpeg", "image/png"}
    assert "image/webp" in get_provider("local", {}).capabilities.image_mime_types


def test_eden_ai_v3_with_fallbacks_accepts_only_what_every_model_in_the_list_takes():
    alone = get_provider("edenai", {"api_key": "k", "model": "openai/gpt-4o"}).capabilities
    chained = get_provider(
        "edenai",
        {
            "api_key": "k",
            "model": "openai/gpt-4o",
            "fallbacks": ["anthropic/claude-sonnet-4-5", "google/gemini-2.5-flash"],
        },
    ).capabilities

    assert alone.max_image_side_px is None
    assert chained.image_mime_types == {"image/png", "image/jpeg", "image/webp"}
    assert chained.max_image_bytes == 5 * 1024 * 1024  # Claude's limit
    assert chained.max_image_side_px == 8000
    assert chained.param_ranges["temperature"] == (0.0, 1.0)


# --- images -----------------------------------------------------------------------------------


def test_an_acceptable_image_is_sent_byte_for_byte(png):
    request = CaptionRequest(image=png, mime_type="image/png")

    prepared = prepare_request(request, get_provider("edenai_v2", {}).capabilities)

    assert prepared.request is request
    assert prepared.notes == ()
    assert not prepared.changed


def test_a_webp_that_eden_ai_v2_refuses_is_re_encoded_and_then_accepted(fake_edenai):
    webp = encode(photo(320, 240), "WEBP", quality=90)
    raw = CaptionRequest(image=webp, mime_type="image/webp", timeout_s=5)
    provider = edenai_v2(fake_edenai)

    with pytest.raises(BadRequest, match="webp"):
        provider.caption(raw)
    prepared = prepare_request(raw, provider.capabilities)
    result = provider.caption(prepared.request)

    assert result.text
    assert prepared.request.mime_type == "image/jpeg"
    assert opened(prepared.request.image).format == "JPEG"
    assert len(prepared.notes) == 1
    assert prepared.notes[0].startswith("image re-encoded WEBP->JPEG ")
    upload = fake_edenai.requests[-1].files["file"]
    assert upload[0] == "image.jpg" and upload[1] == "image/jpeg"


def test_transparency_survives_as_png():
    image = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (10, 10, 30, 20))
    webp = encode(image, "WEBP", lossless=True)

    prepared = prepare_request(
        CaptionRequest(image=webp, mime_type="image/webp"),
        get_provider("edenai_v2", {}).capabilities,
    )

    result = opened(prepared.request.image)
    assert prepared.request.mime_type == "image/png"
    assert result.format == "PNG"
    assert result.getpixel((0, 0))[3] == 0 and result.getpixel((20, 15))[3] == 255


def test_an_opaque_scan_saved_with_an_alpha_channel_becomes_a_jpeg():
    webp = encode(photo(64, 64).convert("RGBA"), "WEBP")

    prepared = prepare_request(
        CaptionRequest(image=webp, mime_type="image/webp"),
        get_provider("edenai_v2", {}).capabilities,
    )

    assert prepared.request.mime_type == "image/jpeg"


def test_a_big_photo_is_shrunk_under_replicates_data_url_limit(fake_replicate):
    big = encode(photo(900, 700), "PNG")
    assert len(big) > 1024 * 1024
    raw = CaptionRequest(image=big, mime_type="image/png", timeout_s=5)
    provider = blip2(fake_replicate)

    with pytest.raises(BadRequest) as refused:
        provider.caption(raw)
    prepared = prepare_request(raw, provider.capabilities)
    result = provider.caption(prepared.request)

    assert refused.value.http_status == 413
    assert result.cost_usd == Decimal("0.00090625")
    assert 0.5 * 256 * 1024 <= len(prepared.request.image) <= 256 * 1024  # no smaller than needed
    assert prepared.request.mime_type == "image/jpeg"
    assert prepared.notes[0].startswith("image re-encoded PNG->JPEG 1.")
    assert prepared.notes[0].endswith(" KB")
    if len(prepared.notes) > 1:
        assert prepared.notes[1].startswith("image resized 900x700->")


def test_a_lossless_source_stays_png_when_png_fits():
    screenshot = Image.new("RGB", (300, 200), "white")
    screenshot.paste((30, 30, 30), (10, 10, 290, 30))
    gif = encode(screenshot, "GIF")

    prepared = prepare_request(
        CaptionRequest(image=gif, mime_type="image/gif"), get_provider("ollama", {}).capabilities
    )

    assert prepared.request.mime_type == "image/png"
    assert opened(prepared.request.image).convert("RGB").getpixel((150, 20)) == (30, 30, 30)
    assert prepared.notes[0].startswith("image re-encoded GIF->PNG")


def test_the_longest_side_is_capped_where_the_vendor_documents_one():
    caps = ProviderCapabilities(image_mime_types=frozenset({"image/jpeg"}), max_image_side_px=100)
    jpeg = encode(photo(400, 100), "JPEG")

    prepared = prepare_request(CaptionRequest(image=jpeg), caps)

    assert opened(prepared.request.image).size == (100, 25)
    assert prepared.notes[1] == "image resized 400x100->100x25 px"


def test_a_photo_taken_sideways_is_turned_upright_before_it_is_re_encoded():
    image = Image.new("RGB", (60, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    webp = encode(image, "WEBP", exif=exif)

    prepared = prepare_request(
        CaptionRequest(image=webp, mime_type="image/webp"),
        get_provider("edenai_v2", {}).capabilities,
    )

    assert opened(prepared.request.image).size == (20, 60)


def test_a_wrong_label_is_corrected_without_touching_the_bytes(png):
    prepared = prepare_request(
        CaptionRequest(image=png, mime_type="image/jpeg"),
        get_provider("edenai_v2", {}).capabilities,
    )

    assert prepared.request.image == png
    assert prepared.request.mime_type == "image/png"
    assert prepared.notes == ("image labelled image/jpeg is image/png; label corrected",)


def test_a_data_url_is_prepared_like_bytes_and_a_web_url_is_left_alone():
    webp = encode(photo(50, 50), "WEBP")
    caps = get_provider("edenai_v2", {}).capabilities

    inline = prepare_request(CaptionRequest(image_url=data_url(webp, "image/webp")), caps)
    web = prepare_request(CaptionRequest(image_url="https://example.com/cat.webp"), caps)

    assert inline.request.image_url is None
    assert inline.request.mime_type == "image/jpeg"
    assert web.request.image_url == "https://example.com/cat.webp"
    assert web.notes == ()


def test_bytes_pillow_cannot_read_are_sent_unchanged_with_a_note():
    request = CaptionRequest(image=b"not an image at all")

    prepared = prepare_request(request, get_provider("edenai_v2", {}).capabilities)

    assert prepared.request.image == b"not an image at all"
    assert prepared.notes == ("image not recognised by Pillow; sent unchanged",)


# --- parameters -------------------------------------------------------------------------------


def test_one_runs_parameters_fit_every_route_of_its_chain(fake_replicate, fake_edenai, png):
    """The run asks for temperature 0.2 and 5000 tokens; BLIP-2 takes 0.5-1 and no token limit,
    Eden AI v2 takes 0-1 and 1-2048 tokens."""
    params = {"temperature": 0.2, "max_new_tokens": 5000, "use_nucleus_sampling": True}
    raw = CaptionRequest(image=png, mime_type="image/png", params=params, timeout_s=5)
    replicate, v2 = blip2(fake_replicate), edenai_v2(fake_edenai)

    with pytest.raises(BadRequest, match="greater than or equal to 0.5"):
        replicate.caption(raw)
    with pytest.raises(BadRequest, match="max_tokens"):
        v2.caption(raw)
    for_replicate = prepare_request(raw, replicate.capabilities)
    for_v2 = prepare_request(raw, v2.capabilities)
    replicate.caption(for_replicate.request)
    v2.caption(for_v2.request)

    assert dict(for_replicate.request.params) == {"temperature": 0.5, "use_nucleus_sampling": True}
    assert for_replicate.notes == (
        "temperature 0.2 clamped to 0.5",
        "max_new_tokens dropped: not accepted",
    )
    assert dict(for_v2.request.params) == {"temperature": 0.2, "max_new_tokens": 2048}
    assert for_v2.notes == (
        "max_new_tokens 5000 clamped to 2048",
        "use_nucleus_sampling dropped: not accepted",
    )
    assert fake_replicate.requests[-1].json["input"]["temperature"] == 0.5
    assert fake_edenai.requests[-1].form["max_tokens"] == "2048"


def test_parameters_in_range_are_kept_as_given(png):
    request = CaptionRequest(image=png, mime_type="image/png", params={"temperature": "0.7"})

    prepared = prepare_request(request, get_provider("replicate", {}).capabilities)

    assert prepared.request is request


def test_capabilities_refuse_ranges_for_parameters_they_do_not_take():
    with pytest.raises(ValueError, match="does not take"):
        ProviderCapabilities(
            image_mime_types=frozenset({"image/png"}), param_ranges={"temperature": (0, 1)}
        )


def test_a_temperature_claude_refuses_is_clamped_for_it(fake_edenai, png):
    raw = CaptionRequest(image=png, mime_type="image/png", params={"temperature": 1.5}, timeout_s=5)
    claude = get_provider(
        "edenai",
        {"base_url": fake_edenai.url, "api_key": API_KEY, "model": "anthropic/claude-sonnet-4-5"},
    )

    with pytest.raises(BadRequest, match="temperature"):
        claude.caption(raw)
    prepared = prepare_request(raw, claude.capabilities)
    claude.caption(prepared.request)

    assert prepared.notes == ("temperature 1.5 clamped to 1.0",)
    assert fake_edenai.requests[-1].json["temperature"] == 1.0
