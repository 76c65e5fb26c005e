"""Replicate BLIP-2 client against the fake Replicate server over real HTTP."""

from __future__ import annotations

import math
import time
from decimal import Decimal

import pytest

from routing.fakes import Reply
from routing.providers import (
    AuthError,
    CaptionRequest,
    MalformedOutput,
    OutOfCredits,
    ProviderTimeout,
    RateLimited,
    ServerError,
    TransientError,
    get_provider,
)
from routing.providers.replicate import BLIP2_VERSION, PredictionAborted, PredictionLost
from tests.routing.providers.conftest import API_KEY


def blip2(fake, **config: object):
    return get_provider(
        "replicate",
        {
            "base_url": fake.url,
            "api_key": API_KEY,
            "usd_per_second": "0.000725",
            "poll_interval_s": 0.05,
            **config,
        },
    )


def ask(png: bytes, **kwargs: object) -> CaptionRequest:
    kwargs.setdefault("timeout_s", 5.0)
    return CaptionRequest(image=png, mime_type="image/png", **kwargs)  # type: ignore[arg-type]


def test_caption_in_sync_mode_costs_predict_time_times_hardware_price(fake_replicate, png):
    fake_replicate.script([Reply.success("a red square", predict_time=2.0)])

    result = blip2(fake_replicate).caption(ask(png, timeout_s=10))

    assert result.text == "a red square"
    assert result.cost_usd == Decimal("0.00145")  # 2.0 s x $0.000725/s
    assert result.cost_source == "computed"
    assert result.usage["predict_time_s"] == 2.0
    assert result.served_model.startswith("andreasjansson/blip-2:f677695e")
    assert result.request_id == next(iter(fake_replicate.predictions))
    sent = fake_replicate.requests[-1]
    assert sent.path == "/v1/predictions"
    assert sent.header("authorization") == f"Bearer {API_KEY}"
    assert sent.header("prefer") == "wait=9"  # ends before our 10 s deadline
    assert sent.json["version"] == BLIP2_VERSION
    assert sent.json["input"]["caption"] is True
    assert sent.json["input"]["image"].startswith("data:image/png;base64,")
    assert "question" not in sent.json["input"]
    assert len(fake_replicate.requests) == 1  # no polling needed


def test_question_mode_sends_question_context_and_sampling(fake_replicate, png):
    request = ask(
        png,
        task="question",
        prompt="What colour is the square?",
        params={
            "context": "Question: is it a shape? Answer: yes",
            "use_nucleus_sampling": True,
            "temperature": 0.7,
        },
    )

    blip2(fake_replicate).caption(request)

    inputs = fake_replicate.requests[-1].json["input"]
    assert inputs["caption"] is False
    assert inputs["question"] == "What colour is the square?"
    assert inputs["context"] == "Question: is it a shape? Answer: yes"
    assert inputs["use_nucleus_sampling"] is True
    assert inputs["temperature"] == 0.7


def test_polls_until_a_terminal_status(fake_replicate, png):
    fake_replicate.script([Reply.success("a lighthouse", polls=3)])

    result = blip2(fake_replicate).caption(ask(png))

    assert result.text == "a lighthouse"
    gets = [r for r in fake_replicate.requests if r.method == "GET"]
    assert len(gets) == 4  # three "processing", then "succeeded"
    assert all(r.path == f"/v1/predictions/{result.request_id}" for r in gets)
    assert all(r.header("authorization") == f"Bearer {API_KEY}" for r in gets)


def test_a_prediction_slower_than_the_sync_wait_is_polled(fake_replicate, png):
    fake_replicate.script([Reply.success("slow", latency_ms=1300)])

    result = blip2(fake_replicate).caption(ask(png, timeout_s=2.2))  # Prefer: wait=1

    assert result.text == "slow"
    assert any(r.method == "GET" for r in fake_replicate.requests)


def test_stuck_prediction_is_canceled_at_the_deadline(fake_replicate, png):
    fake_replicate.script(["stuck"])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout) as info:
        blip2(fake_replicate).caption(ask(png, timeout_s=1.0))

    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0
    prediction_id = info.value.request_id
    assert prediction_id in fake_replicate.canceled
    cancels = [r for r in fake_replicate.requests if r.path.endswith("/cancel")]
    assert [r.method for r in cancels] == ["POST"]
    assert cancels[0].header("authorization") == f"Bearer {API_KEY}"
    assert fake_replicate.predictions[prediction_id].status == "canceled"


def test_stuck_prediction_in_sync_mode_is_canceled_too(fake_replicate, png):
    fake_replicate.script(["stuck"])

    with pytest.raises(ProviderTimeout) as info:
        blip2(fake_replicate).caption(ask(png, timeout_s=2.5))  # Prefer: wait=1, then polls

    assert info.value.request_id in fake_replicate.canceled


def test_failed_prediction_is_a_server_error_and_still_costs(fake_replicate, png):
    fake_replicate.script([Reply.provider_fail("CUDA error: out of memory", polls=1)])

    with pytest.raises(ServerError, match="out of memory") as info:
        blip2(fake_replicate).caption(ask(png))

    assert info.value.cost_usd == Decimal("0.00090625")  # 1.25 s were billed
    assert info.value.request_id in fake_replicate.predictions


def test_throttled_create_parses_retry_after(fake_replicate, png):
    fake_replicate.script(
        [Reply.rate_limited(retry_after="4"), Reply.rate_limited(retry_after=None)]
    )

    with pytest.raises(RateLimited) as with_header:
        blip2(fake_replicate).caption(ask(png))
    with pytest.raises(RateLimited) as body_only:
        blip2(fake_replicate).caption(ask(png))

    assert with_header.value.retry_after_s == 4
    assert body_only.value.retry_after_s == 30  # "Your rate limit resets in ~30s."


@pytest.mark.parametrize(("status", "error"), [(402, OutOfCredits), (500, ServerError)])
def test_http_errors(fake_replicate, png, status, error):
    fake_replicate.script([Reply.error(status)])

    with pytest.raises(error) as info:
        blip2(fake_replicate).caption(ask(png))

    assert info.value.http_status == status


def test_402_carries_the_billing_message(fake_replicate, png):
    fake_replicate.script(["402"])

    with pytest.raises(OutOfCredits, match="Billing required"):
        blip2(fake_replicate).caption(ask(png))


def test_wrong_token_is_an_auth_error_without_the_token(fake_replicate, png):
    provider = get_provider(
        "replicate", {"base_url": fake_replicate.url, "api_key": "r8_wrong_token_abcdef"}
    )

    with pytest.raises(AuthError) as info:
        provider.caption(ask(png))

    assert "r8_wrong_token_abcdef" not in str(info.value) + info.value.raw_excerpt


def test_hang_on_create_times_out(fake_replicate, png):
    fake_replicate.script(["hang"])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        blip2(fake_replicate).caption(ask(png, timeout_s=0.5))

    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("reply", "reason"), [("empty", "empty"), ("refusal", "refusal"), ("malformed", "unparseable")]
)
def test_unusable_answers_are_malformed(fake_replicate, png, reply, reason):
    fake_replicate.script([reply])

    with pytest.raises(MalformedOutput) as info:
        blip2(fake_replicate).caption(ask(png))

    assert info.value.reason == reason


def test_without_a_hardware_price_the_cost_is_unknown(fake_replicate, png):
    provider = get_provider("replicate", {"base_url": fake_replicate.url, "api_key": API_KEY})

    result = provider.caption(ask(png))

    assert result.cost_usd is None and result.cost_source == "none"


def test_version_can_be_pinned_in_the_model_string(fake_replicate, png):
    provider = blip2(fake_replicate, model="someone/blip-3:abc123")

    result = provider.caption(ask(png))

    assert fake_replicate.requests[-1].json["version"] == "abc123"
    assert result.served_model.startswith("someone/blip-3")


def test_poll_urls_pointing_elsewhere_are_not_followed(fake_replicate, png):
    """The token is only ever sent to the configured base URL."""
    other = get_provider(
        "replicate",
        {"base_url": "http://localhost:1", "api_key": API_KEY, "poll_interval_s": 0.01},
    )
    prediction = {"id": "abc", "urls": {"get": fake_replicate.url + "/v1/predictions/abc"}}

    assert other._url(prediction, "get") == "http://localhost:1/v1/predictions/abc"
    assert other._url(prediction, "cancel") == "http://localhost:1/v1/predictions/abc/cancel"


# --- a prediction is never left running, never started twice, and always billed ------------------


def predict_time_cost(fake, prediction_id: str) -> Decimal:
    seconds = fake.predictions[prediction_id].predict_time
    assert seconds is not None and seconds > 0
    return (Decimal(str(seconds)) * Decimal("0.000725")).quantize(Decimal("0.00000001"))


@pytest.mark.parametrize(
    ("poll_error", "error"),
    [("500", ServerError), ("503", ServerError), ("429", RateLimited), ("reset", TransientError)],
)
def test_a_failed_poll_cancels_the_prediction_and_bills_the_time_it_ran(
    fake_replicate, png, poll_error, error
):
    """Retrying after a failed poll would start a second prediction while the first one kept
    running and billing; so the first is cancelled, and what it cost is on the error."""
    fake_replicate.script([Reply.poll_failure(poll_error, polls=5)])

    with pytest.raises(error) as info:
        blip2(fake_replicate).caption(ask(png))

    prediction_id = info.value.request_id
    assert info.value.retryable
    assert fake_replicate.canceled == [prediction_id]
    assert fake_replicate.status_of(prediction_id) == "canceled"
    assert info.value.cost_usd == predict_time_cost(fake_replicate, prediction_id)
    assert "canceled" in str(info.value)


def test_a_stuck_prediction_canceled_at_the_deadline_is_billed_for_its_time(fake_replicate, png):
    fake_replicate.script(["stuck"])

    with pytest.raises(ProviderTimeout) as info:
        blip2(fake_replicate).caption(ask(png, timeout_s=1.0))

    prediction_id = info.value.request_id
    assert info.value.cost_usd == predict_time_cost(fake_replicate, prediction_id)


def test_a_prediction_that_finished_while_we_cancelled_it_is_used_not_wasted(fake_replicate, png):
    fake_replicate.script([Reply.poll_failure("500", polls=0, text="a harbour at dusk")])
    submitted: list[str] = []

    result = blip2(fake_replicate).caption(ask(png, on_submitted=submitted.append))

    assert result.text == "a harbour at dusk"
    assert result.cost_usd == Decimal("0.00090625")
    assert len(fake_replicate.predictions) == 1


@pytest.mark.parametrize(("timeout_s", "header"), [(9.2, "10s"), (60, "1m"), (90.5, "1m31s")])
def test_every_create_carries_a_server_side_deadline(fake_replicate, png, timeout_s, header):
    blip2(fake_replicate).caption(ask(png, timeout_s=timeout_s))

    create = fake_replicate.requests[0]
    assert create.header("cancel-after") == header
    prediction = next(iter(fake_replicate.predictions.values()))
    assert prediction.cancel_after_s == math.ceil(timeout_s)


def test_a_create_whose_answer_never_comes_is_stopped_by_replicate(fake_replicate, png):
    """We never learn the id, so we cannot cancel it; the Cancel-After deadline does."""
    fake_replicate.script([Reply.create_hang(seconds=5)])

    with pytest.raises(ProviderTimeout):
        blip2(fake_replicate).caption(ask(png, timeout_s=1.0))

    (prediction_id,) = fake_replicate.predictions
    assert fake_replicate.canceled == []
    time.sleep(0.2)
    assert fake_replicate.status_of(prediction_id) == "canceled"
    assert fake_replicate.predictions[prediction_id].predict_time == 1.0


def test_an_aborted_prediction_is_a_retryable_error_that_cost_nothing(fake_replicate, png):
    fake_replicate.script([Reply.aborted(polls=1)])

    with pytest.raises(PredictionAborted) as info:
        blip2(fake_replicate).caption(ask(png))

    assert info.value.error_class == "aborted"
    assert info.value.retryable
    assert info.value.cost_usd == Decimal(0)
    assert "before it started" in str(info.value)


def test_the_prediction_id_is_handed_over_before_polling(fake_replicate, png):
    """The caller stores the id as soon as Replicate answers the create; with a callback the
    create does not hold the connection open in sync mode, so the id arrives at once."""
    fake_replicate.script([Reply.success("a tram", polls=2)])
    seen: list[tuple[str, int]] = []

    def on_submitted(prediction_id: str) -> None:
        seen.append((prediction_id, len(fake_replicate.requests)))

    result = blip2(fake_replicate).caption(ask(png, on_submitted=on_submitted))

    assert seen == [(result.request_id, 1)]  # only the create had been sent
    assert fake_replicate.requests[0].header("prefer") is None
    assert result.text == "a tram"


def test_when_the_id_cannot_be_stored_the_prediction_is_canceled(fake_replicate, png):
    def on_submitted(prediction_id: str) -> None:
        raise RuntimeError("database is down")

    with pytest.raises(RuntimeError, match="database is down"):
        blip2(fake_replicate).caption(ask(png, on_submitted=on_submitted))

    assert fake_replicate.canceled == list(fake_replicate.predictions)


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: nothing after it runs in this worker."""


def start_and_die(fake, png) -> str:
    """A first worker creates the prediction, stores its id and dies before polling."""
    stored: list[str] = []

    def on_submitted(prediction_id: str) -> None:
        stored.append(prediction_id)
        raise WorkerKilled

    with pytest.raises(WorkerKilled):
        blip2(fake).caption(ask(png, on_submitted=on_submitted))
    assert fake.canceled == []
    return stored[0]


def test_a_resumed_call_polls_the_stored_prediction_instead_of_starting_another(
    fake_replicate, png
):
    fake_replicate.script([Reply.success("a lighthouse at night", polls=3)])
    prediction_id = start_and_die(fake_replicate, png)

    result = blip2(fake_replicate).caption(ask(png, resume_request_id=prediction_id))

    assert result.text == "a lighthouse at night"
    assert result.request_id == prediction_id
    assert result.cost_usd == Decimal("0.00090625")
    assert len(fake_replicate.predictions) == 1
    assert [r.method for r in fake_replicate.requests].count("POST") == 1


def test_resuming_a_prediction_that_already_ended_returns_its_outcome(fake_replicate, png):
    fake_replicate.script([Reply.success("done already"), Reply.provider_fail("CUDA error")])
    finished = start_and_die(fake_replicate, png)
    failed = start_and_die(fake_replicate, png)
    time.sleep(0.05)

    result = blip2(fake_replicate).caption(ask(png, resume_request_id=finished))
    with pytest.raises(ServerError, match="CUDA error") as info:
        blip2(fake_replicate).caption(ask(png, resume_request_id=failed))

    assert result.text == "done already"
    assert info.value.cost_usd == Decimal("0.00090625")
    assert len(fake_replicate.predictions) == 2


def test_resuming_a_prediction_still_running_at_the_deadline_cancels_it(fake_replicate, png):
    fake_replicate.script(["stuck"])
    prediction_id = start_and_die(fake_replicate, png)

    with pytest.raises(ProviderTimeout):
        blip2(fake_replicate).caption(ask(png, timeout_s=0.5, resume_request_id=prediction_id))

    assert fake_replicate.canceled == [prediction_id]


def test_resuming_a_prediction_replicate_no_longer_has_is_a_retryable_error(fake_replicate, png):
    with pytest.raises(PredictionLost) as info:
        blip2(fake_replicate).caption(ask(png, resume_request_id="gone0000000000000000000000"))

    assert info.value.retryable
    assert info.value.error_class == "prediction_lost"
    assert [r.method for r in fake_replicate.requests] == ["GET"]


def test_resuming_a_prediction_whose_output_was_removed_is_lost_but_billed(fake_replicate, png):
    fake_replicate.script([Reply.success("too late")])
    prediction_id = start_and_die(fake_replicate, png)
    fake_replicate.status_of(prediction_id)
    fake_replicate.expire(prediction_id)

    with pytest.raises(PredictionLost, match="removed") as info:
        blip2(fake_replicate).caption(ask(png, resume_request_id=prediction_id))

    assert info.value.cost_usd == Decimal("0.00090625")


def test_the_callback_and_the_resume_id_do_not_change_what_a_request_is(png):
    plain = ask(png)
    with_hooks = ask(png, on_submitted=print, resume_request_id="abc")

    assert plain == with_hooks
    assert "abc" not in repr(with_hooks)


def test_a_dripping_create_answer_stops_at_the_timeout(fake_replicate, png):
    fake_replicate.script([Reply.success(drip_ms=50)])
    started = time.monotonic()

    with pytest.raises(ProviderTimeout):
        blip2(fake_replicate).caption(ask(png, timeout_s=1.0))

    assert time.monotonic() - started < 1.5
