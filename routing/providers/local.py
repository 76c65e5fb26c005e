"""Local transformers worker (kind ``local``): BLIP-2 (OPT and Flan-T5), Florence-2, Kosmos-2 and
LLaVA-1.5, batched, on the GPU when there is one.

torch and transformers are imported inside functions only: the web process imports this module
(through the registry) without loading them. A model loads once per process, cached by
(model id, dtype, device); weights come from the local Hugging Face cache only
(``local_files_only=True``), and a missing model fails with ``WeightsUnavailable`` instead of
crashing the worker; so does a worker installed without the ``gpu`` extra (no torch or
transformers).

Config keys: ``model`` (hub id or local directory; default ``Salesforce/blip2-opt-2.7b``),
``family`` (``blip2`` | ``florence2`` | ``kosmos2`` | ``llava``; guessed from the model id or its
config.json), ``device`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``), ``dtype`` (``auto``: fp16 on
CUDA, bf16 for BLIP-2 Flan-T5, fp32 on CPU; or ``float16`` | ``bfloat16`` | ``float32``),
``gpu_hour_usd`` (cost = GPU seconds x $/GPU-hour, cost source ``configured``), ``max_batch_size``
(default 8), ``local_files_only`` (default true), ``cache_dir``, ``revision``, ``florence_task``
(default ``<CAPTION>``), ``kosmos_prompt`` (default ``<grounding>An image of``),
``max_new_tokens`` (default 60).

Prompts: BLIP-2 captions take no text (the request's instruction is not sent); questions become
``Question: {q} Answer:``. Florence-2 runs its caption task tokens only (``<CAPTION>``,
``<DETAILED_CAPTION>``, ``<MORE_DETAILED_CAPTION>``, chosen by ``florence_task``, by the prompt
being one of them, or by ``params["detail"]`` = ``detailed`` / ``more_detailed``); it has no
free-form question task. Kosmos-2 captions start from ``<grounding>An image of`` and are
post-processed to plain text. LLaVA uses the processor's chat template.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from math import inf
from typing import Any, Literal, Self

from routing.providers.base import (
    IMAGE_MIME_TYPES,
    BadRequest,
    CaptionRequest,
    CaptionResult,
    MalformedOutput,
    PermanentError,
    Provider,
    ProviderCapabilities,
    ProviderError,
    ProviderTimeout,
    ServerError,
    WeightsUnavailable,
)
from routing.providers.http import decode_data_url
from routing.providers.output import (
    excerpt,
    finish_text,
    instruction_for,
    to_decimal,
    usd,
)

Family = Literal["blip2", "florence2", "kosmos2", "llava"]
FAMILIES: tuple[Family, ...] = ("blip2", "florence2", "kosmos2", "llava")
DEFAULT_MODEL = "Salesforce/blip2-opt-2.7b"
DEFAULT_MAX_NEW_TOKENS = 60
FLORENCE_TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")
KOSMOS_PROMPT = "<grounding>An image of"
LLAVA_FALLBACK_PROMPT = "USER: <image>\n{prompt} ASSISTANT:"
_MODEL_TYPES: dict[str, Family] = {
    "blip-2": "blip2",
    "florence2": "florence2",
    "kosmos-2": "kosmos2",
    "llava": "llava",
}


@dataclass
class LoadedModel:
    """A model and its processor, ready on one device. ``lock`` serialises ``generate`` calls."""

    model: Any
    processor: Any
    family: Family
    model_id: str
    device: str
    dtype: str
    encoder_decoder: bool
    lock: threading.Lock = field(default_factory=threading.Lock)


# Pillow opens the image, so any format it reads works; ranges are what generate() validates
# (temperature and repetition_penalty must be strictly positive, top_p within 0-1).
LOCAL_CAPABILITIES = ProviderCapabilities(
    image_mime_types=frozenset(IMAGE_MIME_TYPES),
    params=frozenset(
        {
            "max_new_tokens",
            "min_new_tokens",
            "num_beams",
            "use_nucleus_sampling",
            "do_sample",
            "top_p",
            "temperature",
            "repetition_penalty",
            "seed",
            "detail",
        }
    ),
    param_ranges={
        "max_new_tokens": (1, inf),
        "min_new_tokens": (0, inf),
        "num_beams": (1, inf),
        "top_p": (0.0, 1.0),
        "temperature": (0.01, inf),
        "repetition_penalty": (0.01, inf),
    },
)

_CACHE: dict[tuple[str, str, str], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget loaded models (tests; freeing GPU memory)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def guess_family(model_id: str) -> Family | None:
    name = model_id.lower()
    for marker, family in (
        ("blip2", "blip2"),
        ("blip-2", "blip2"),
        ("florence", "florence2"),
        ("kosmos", "kosmos2"),
        ("llava", "llava"),
    ):
        if marker in name:
            return family  # type: ignore[return-value]
    config_path = os.path.join(model_id, "config.json")
    if os.path.isfile(config_path):
        try:
            with open(config_path, encoding="utf-8") as handle:
                model_type = json.load(handle).get("model_type", "")
        except (OSError, ValueError):
            return None
        return _MODEL_TYPES.get(str(model_type))
    return None


GPU_EXTRA_MISSING = "local models need the gpu extra (pip install -e '.[gpu]')"


def require_gpu_extra() -> None:
    """``WeightsUnavailable`` (permanent, so the chain falls back, as for missing weights) when
    torch or transformers is not installed, instead of a ModuleNotFoundError from deep inside."""
    for module in ("torch", "transformers"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise WeightsUnavailable(
                f"{GPU_EXTRA_MISSING}; {module} is not installed on this worker"
            ) from exc


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, *, device: str, model_id: str) -> str:
    if dtype != "auto":
        if dtype not in ("float16", "bfloat16", "float32"):
            raise ValueError(f"dtype must be auto, float16, bfloat16 or float32, got {dtype!r}")
        return dtype
    if not device.startswith("cuda"):
        return "float32"
    # "Flan-T5 checkpoints cannot be cast to float16" (BLIP-2 docs): bf16 for those.
    return "bfloat16" if "t5" in model_id.lower() else "float16"


def _transformers() -> Any:
    return importlib.import_module("transformers")


def _model_class(family: Family) -> Any:
    transformers = _transformers()
    names = {
        "blip2": "Blip2ForConditionalGeneration",
        "florence2": "Florence2ForConditionalGeneration",
        "kosmos2": "Kosmos2ForConditionalGeneration",
        "llava": "LlavaForConditionalGeneration",
    }
    return getattr(transformers, names[family])


def load_model(
    model_id: str,
    *,
    family: Family,
    device: str = "auto",
    dtype: str = "auto",
    local_files_only: bool = True,
    cache_dir: str | None = None,
    revision: str | None = None,
) -> LoadedModel:
    """Load (once per process) or return the cached model for (id, dtype, device)."""
    require_gpu_extra()
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device=device, model_id=model_id)
    key = (model_id, dtype, device)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        import torch

        kwargs: dict[str, Any] = {"local_files_only": local_files_only}
        if cache_dir:
            kwargs["cache_dir"] = cache_dir
        if revision:
            kwargs["revision"] = revision
        try:
            processor = _transformers().AutoProcessor.from_pretrained(model_id, **kwargs)
            model = _model_class(family).from_pretrained(
                model_id, dtype=getattr(torch, dtype), **kwargs
            )
        except OSError as exc:
            raise WeightsUnavailable(
                f"model weights not available: {model_id} (not found in the local Hugging Face "
                f"cache{' ' + cache_dir if cache_dir else ''}; download them on a machine with "
                f"internet access, e.g. `hf download {model_id}`, and copy the cache to this "
                f"worker). {str(exc)[:200]}"
            ) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"cannot load {model_id} as {family}: {str(exc)[:300]}") from exc
        model = model.to(device).eval()
        loaded = LoadedModel(
            model=model,
            processor=processor,
            family=family,
            model_id=model_id,
            device=device,
            dtype=dtype,
            encoder_decoder=_is_encoder_decoder(model),
        )
        _CACHE[key] = loaded
        return loaded


def _is_encoder_decoder(model: Any) -> bool:
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return True
    text_config = getattr(config, "text_config", None)
    return bool(getattr(text_config, "is_encoder_decoder", False))


@dataclass
class _Item:
    index: int
    request: CaptionRequest
    image: Any  # PIL image
    prompt: str  # text sent with the image ("" = image only)
    task_token: str = ""  # Florence-2 task


class LocalProvider(Provider):
    kind = "local"
    supports_batching = True

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        family: Family | None = None,
        device: str = "auto",
        dtype: str = "auto",
        gpu_hour_usd: Decimal | str | float | None = None,
        max_batch_size: int = 8,
        local_files_only: bool = True,
        cache_dir: str | None = None,
        revision: str | None = None,
        florence_task: str = "<CAPTION>",
        kosmos_prompt: str = KOSMOS_PROMPT,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        loaded: LoadedModel | None = None,
    ) -> None:
        super().__init__(name=f"local:{model}")
        resolved = family or guess_family(model)
        if resolved is None:
            raise ValueError(
                f"cannot tell the model family of {model!r}; set family to one of {FAMILIES}"
            )
        if resolved not in FAMILIES:
            raise ValueError(f"unknown family {resolved!r}; expected one of {FAMILIES}")
        if florence_task not in FLORENCE_TASKS:
            raise ValueError(f"florence_task must be one of {FLORENCE_TASKS}")
        self.model_id = model
        self.family: Family = resolved
        self.device = device
        self.dtype = dtype
        self.gpu_hour_usd = to_decimal(gpu_hour_usd)
        self.max_batch_size = max(1, int(max_batch_size))
        self.local_files_only = local_files_only
        self.cache_dir = cache_dir
        self.revision = revision
        self.florence_task = florence_task
        self.kosmos_prompt = kosmos_prompt
        self.max_new_tokens = max_new_tokens
        self._loaded = loaded

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        family = config.get("family") or None
        return cls(
            model=str(config.get("model") or DEFAULT_MODEL),
            family=family,
            device=str(config.get("device") or "auto"),
            dtype=str(config.get("dtype") or "auto"),
            gpu_hour_usd=to_decimal(config.get("gpu_hour_usd")),
            max_batch_size=int(config.get("max_batch_size") or 8),
            local_files_only=bool(config.get("local_files_only", True)),
            cache_dir=config.get("cache_dir") or None,
            revision=config.get("revision") or None,
            florence_task=str(config.get("florence_task") or "<CAPTION>"),
            kosmos_prompt=str(config.get("kosmos_prompt") or KOSMOS_PROMPT),
            max_new_tokens=int(config.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS),
        )

    @classmethod
    def from_components(
        cls,
        *,
        model: Any,
        processor: Any,
        family: Family,
        model_id: str = "in-memory",
        device: str = "cpu",
        **options: Any,
    ) -> Self:
        """Wrap an already-built model and processor (tests, benchmarks, custom loading)."""
        loaded = LoadedModel(
            model=model.to(device).eval(),
            processor=processor,
            family=family,
            model_id=model_id,
            device=device,
            dtype=str(_vision_dtype(model)).removeprefix("torch."),
            encoder_decoder=_is_encoder_decoder(model),
        )
        return cls(model=model_id, family=family, device=device, loaded=loaded, **options)

    def load(self) -> LoadedModel:
        """Load now (e.g. when a GPU worker process starts) instead of on the first caption."""
        if self._loaded is None:
            self._loaded = load_model(
                self.model_id,
                family=self.family,
                device=self.device,
                dtype=self.dtype,
                local_files_only=self.local_files_only,
                cache_dir=self.cache_dir,
                revision=self.revision,
            )
        return self._loaded

    @property
    def capabilities(self) -> ProviderCapabilities:
        return LOCAL_CAPABILITIES

    def close(self) -> None:
        self._loaded = None  # the process-wide cache keeps the model for the next provider

    # --- captioning -------------------------------------------------------------------------------

    def caption(self, request: CaptionRequest) -> CaptionResult:
        (result,) = self.caption_batch([request])
        if isinstance(result, ProviderError):
            raise result
        return result

    def caption_batch(
        self, requests: Sequence[CaptionRequest]
    ) -> list[CaptionResult | ProviderError]:
        results: list[CaptionResult | ProviderError | None] = [None] * len(requests)
        try:
            loaded = self.load()
        except ProviderError as exc:
            return [exc for _ in requests]
        groups: dict[tuple[str, str], list[_Item]] = {}
        for index, request in enumerate(requests):
            try:
                item = self._item(index, request)
                kwargs = self._generate_kwargs(request)
            except ProviderError as exc:
                results[index] = exc
                continue
            # One generate() per set of decoding options and prompt layout. Kosmos-2 computes
            # positions from the unpadded length, so its batches share one prompt (no padding).
            mode = "image" if not item.prompt and not item.task_token else "text"
            if self.family == "kosmos2":
                mode = f"text:{item.prompt}"
            key = (mode, json.dumps(kwargs, sort_keys=True, default=str))
            groups.setdefault(key, []).append(item)
        for (_, kwargs_json), items in groups.items():
            kwargs = json.loads(kwargs_json)
            for start in range(0, len(items), self.max_batch_size):
                chunk = items[start : start + self.max_batch_size]
                for item, outcome in zip(chunk, self._run(loaded, chunk, kwargs), strict=True):
                    results[item.index] = outcome
        return [r if r is not None else PermanentError("no result") for r in results]

    def _item(self, index: int, request: CaptionRequest) -> _Item:
        image = _open_image(request)
        if self.family == "florence2":
            return _Item(index, request, image, "", task_token=self._florence_task(request))
        return _Item(index, request, image, self._prompt(request))

    def _prompt(self, request: CaptionRequest) -> str:
        if self.family == "blip2":
            if request.task == "caption":
                return ""
            return f"Question: {instruction_for(request)} Answer:"
        if self.family == "kosmos2":
            if request.task == "caption":
                return self.kosmos_prompt
            return f"<grounding>Question: {instruction_for(request)} Answer:"
        return instruction_for(request)  # llava: wrapped in the chat template later

    def _florence_task(self, request: CaptionRequest) -> str:
        if request.task != "caption":
            raise BadRequest(
                "Florence-2 has no free-form question or JSON task; use BLIP-2 or LLaVA for "
                f"{request.task} requests"
            )
        prompt = request.prompt.strip()
        if prompt in FLORENCE_TASKS:
            return prompt
        detail = str(request.params.get("detail", "")).lower()
        if detail == "detailed":
            return "<DETAILED_CAPTION>"
        if detail == "more_detailed":
            return "<MORE_DETAILED_CAPTION>"
        return self.florence_task

    def _generate_kwargs(self, request: CaptionRequest) -> dict[str, Any]:
        params = request.params
        kwargs: dict[str, Any] = {
            "max_new_tokens": int(params.get("max_new_tokens", self.max_new_tokens)),
        }
        if "min_new_tokens" in params:
            kwargs["min_new_tokens"] = int(params["min_new_tokens"])
        num_beams = params.get("num_beams", 3 if self.family == "florence2" else None)
        if num_beams is not None:
            kwargs["num_beams"] = int(num_beams)
        sample = bool(params.get("use_nucleus_sampling") or params.get("do_sample"))
        kwargs["do_sample"] = sample
        if sample:
            kwargs["top_p"] = float(params.get("top_p", 0.9))
            kwargs["temperature"] = float(params.get("temperature", 1.0))
        if "repetition_penalty" in params:
            kwargs["repetition_penalty"] = float(params["repetition_penalty"])
        if "seed" in params:
            kwargs["seed"] = int(params["seed"])
        return kwargs

    def _run(
        self, loaded: LoadedModel, items: list[_Item], kwargs: dict[str, Any]
    ) -> list[CaptionResult | ProviderError]:
        """One batched generate(); halves the batch on out-of-memory."""
        import torch

        started = time.monotonic()
        # Timeouts differ per request (each has its own chain deadline) and must not split
        # batches: the batch stops at the earliest one.
        limits = {"max_time": min(item.request.timeout_s for item in items)}
        try:
            with loaded.lock, torch.inference_mode():
                texts, raws, truncated = _generate(loaded, items, {**kwargs, **limits})
        except torch.OutOfMemoryError:
            if loaded.device.startswith("cuda"):
                torch.cuda.empty_cache()
            if len(items) > 1:
                half = len(items) // 2
                return self._run(loaded, items[:half], kwargs) + self._run(
                    loaded, items[half:], kwargs
                )
            return [ServerError(f"{self.model_id}: out of GPU memory on one image")]
        except ProviderError as exc:
            return [exc for _ in items]
        except Exception as exc:  # noqa: BLE001 - one bad batch must not kill the worker
            error = PermanentError(
                f"{self.model_id}: generation failed: {type(exc).__name__}: {str(exc)[:300]}"
            )
            return [error for _ in items]
        seconds = time.monotonic() - started
        latency_ms = round(seconds * 1000)
        share = seconds / len(items)
        cost = (
            usd(Decimal(str(share)) * self.gpu_hour_usd / Decimal(3600))
            if self.gpu_hour_usd is not None
            else None
        )
        outcomes: list[CaptionResult | ProviderError] = []
        for item, text, raw, cut in zip(items, texts, raws, truncated, strict=True):
            raw_excerpt = excerpt(raw)
            if seconds >= item.request.timeout_s:
                outcomes.append(
                    ProviderTimeout(
                        f"{self.model_id}: generation took {seconds:.1f}s, over the "
                        f"{item.request.timeout_s:g}s timeout",
                        raw_excerpt=raw_excerpt,
                        latency_ms=latency_ms,
                        cost_usd=cost,
                    )
                )
                continue
            try:
                final, data = finish_text(text, item.request, raw_excerpt=raw_excerpt)
            except MalformedOutput as exc:
                exc.cost_usd, exc.latency_ms = cost, latency_ms
                outcomes.append(exc)
                continue
            outcomes.append(
                CaptionResult(
                    text=final,
                    data=data,
                    served_model=loaded.model_id,
                    request_id=None,
                    latency_ms=latency_ms,
                    cost_usd=cost,
                    cost_source="configured" if cost is not None else "none",
                    raw_excerpt=raw_excerpt,
                    usage={"gpu_seconds": share, "batch_size": float(len(items))},
                    truncated=cut,
                )
            )
        return outcomes


def _open_image(request: CaptionRequest) -> Any:
    from PIL import Image, UnidentifiedImageError

    data = request.image
    if data is None and request.image_url:
        decoded = decode_data_url(request.image_url)
        if decoded is None:
            raise BadRequest("local models need the image bytes (or a data URL), not a web URL")
        data = decoded[0]
    assert data is not None
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadRequest(f"the image cannot be decoded: {str(exc)[:200]}") from exc
    return image.convert("RGB")


def _vision_dtype(model: Any) -> Any:
    """The dtype pixel values must have: BLIP-2 under fp16 keeps its Q-Former in fp32, so
    ``model.dtype`` is not the vision tower's dtype."""
    for name, parameter in model.named_parameters():
        if "vision" in name and parameter.is_floating_point():
            return parameter.dtype
    return next(model.parameters()).dtype


def _to_device(inputs: Mapping[str, Any], loaded: LoadedModel) -> dict[str, Any]:
    dtype = _vision_dtype(loaded.model)
    moved: dict[str, Any] = {}
    for key, value in inputs.items():
        if hasattr(value, "to"):
            value = value.to(loaded.device)
            if value.is_floating_point():
                value = value.to(dtype)
        moved[key] = value
    return moved


def _generate(
    loaded: LoadedModel, items: list[_Item], kwargs: dict[str, Any]
) -> tuple[list[str], list[str], list[bool]]:
    """``(clean texts, raw decoded texts, truncated flags)`` for one batch, in order."""
    import torch

    seed = kwargs.pop("seed", None)
    if seed is not None:
        torch.manual_seed(seed)
    processor = loaded.processor
    tokenizer = processor.tokenizer
    images = [item.image for item in items]
    # Decoder-only models continue the prompt, so pad on the left; encoder-decoders on the right.
    tokenizer.padding_side = "right" if loaded.encoder_decoder else "left"
    family = loaded.family
    if family == "blip2":
        if items[0].prompt or loaded.encoder_decoder:
            # Flan-T5 captions get an empty text: T5 has no BOS to start an image-only prompt.
            prompts = [item.prompt for item in items]
            inputs = processor(images=images, text=prompts, padding=True, return_tensors="pt")
        else:
            inputs = processor(images=images, return_tensors="pt")
    elif family == "florence2":
        tasks = [item.task_token for item in items]
        inputs = processor(text=tasks, images=images, padding=True, return_tensors="pt")
    elif family == "kosmos2":
        inputs = processor(
            text=[item.prompt for item in items],
            images=images,
            padding=True,
            return_tensors="pt",
            num_image_tokens=loaded.model.config.latent_query_num,
        )
    else:
        prompts = [_llava_prompt(processor, item.prompt) for item in items]
        inputs = processor(images=images, text=prompts, padding=True, return_tensors="pt")
    inputs = _to_device(inputs, loaded)
    if family == "kosmos2":
        inputs["image_embeds"] = None
        inputs["use_cache"] = True
    output = loaded.model.generate(**inputs, **kwargs)
    prompt_length = inputs["input_ids"].shape[1] if "input_ids" in inputs else 0
    truncated = _truncated(loaded, output, max_new_tokens=kwargs.get("max_new_tokens"))
    texts, raws = _decode(loaded, items, output, prompt_length)
    return texts, raws, truncated


def _truncated(loaded: LoadedModel, output: Any, *, max_new_tokens: int | None) -> list[bool]:
    """Which rows were cut off. generate() stops when every row has ended (each then ends in
    end-of-sequence or padding) or at ``max_new_tokens`` / ``max_time``: a row whose last token
    is neither was still talking. Models with ``forced_eos_token_id`` (Florence-2) write that
    token in the last slot of a full-length answer, so there an end token in the last slot, right
    after a word, counts as cut off too."""
    config = loaded.model.generation_config
    tokenizer = loaded.processor.tokenizer
    stops = _token_ids(
        config.eos_token_id, config.pad_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    rows = output.tolist()
    if not stops:
        return [False] * len(rows)
    forced = _token_ids(config.forced_eos_token_id)
    generated = len(rows[0]) - 1 if loaded.encoder_decoder and rows else 0
    full_length = bool(forced) and max_new_tokens is not None and generated >= max_new_tokens
    flags = []
    for row in rows:
        last = int(row[-1])
        cut_by_force = full_length and last in forced and len(row) > 1 and int(row[-2]) not in stops
        flags.append(last not in stops or cut_by_force)
    return flags


def _token_ids(*values: Any) -> set[int]:
    ids: set[int] = set()
    for value in values:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(v for v in value if isinstance(v, int))
    return ids


def _llava_prompt(processor: Any, text: str) -> str:
    if getattr(processor, "chat_template", None):
        conversation = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
        ]
        return str(processor.apply_chat_template(conversation, add_generation_prompt=True))
    return LLAVA_FALLBACK_PROMPT.format(prompt=text)


def _decode(
    loaded: LoadedModel, items: list[_Item], output: Any, prompt_length: int
) -> tuple[list[str], list[str]]:
    processor = loaded.processor
    family = loaded.family
    if family == "florence2":
        raws = processor.batch_decode(output, skip_special_tokens=False)
        pad = processor.tokenizer.pad_token or "<pad>"
        texts = []
        for item, raw in zip(items, raws, strict=True):
            unpadded = raw.replace(pad, "")
            try:
                parsed = processor.post_process_generation(
                    unpadded, task=item.task_token, image_size=item.image.size
                )
            except ValueError:  # a processor config without post-processing rules
                parsed = {item.task_token: unpadded.replace("<s>", "").replace("</s>", "")}
            value = parsed.get(item.task_token, "")
            texts.append(value if isinstance(value, str) else json.dumps(value))
        return texts, list(raws)
    if family == "kosmos2":
        # generate() returns prompt + continuation; the caption is what follows </image>.
        raws = processor.batch_decode(output, skip_special_tokens=True)
        texts = []
        for item, raw in zip(items, raws, strict=True):
            caption, _entities = processor.post_process_generation(raw)
            caption = str(caption).strip()
            prompt = item.prompt.replace("<grounding>", "").strip()
            if caption.lower() == prompt.lower():
                caption = ""  # nothing generated beyond the prompt
            elif item.request.task != "caption":
                lower = caption.lower()
                if "answer:" in lower:
                    caption = caption[lower.rindex("answer:") + len("answer:") :]
            texts.append(caption)
        return texts, list(raws)
    if not loaded.encoder_decoder and prompt_length:
        output = output[:, prompt_length:]  # decoder-only output repeats the prompt
    raws = processor.batch_decode(output, skip_special_tokens=True)
    return [str(raw) for raw in raws], [str(raw) for raw in raws]
