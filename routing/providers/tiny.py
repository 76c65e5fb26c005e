"""Randomly initialised vision-language models built from configs, with processors built offline,
so that tests and benchmarks run the real ``generate()`` path with no download.

Tiny sizes come from the transformers test suite (``shared/reference/providers.md`` §3.6). The
processors are the real transformers processor classes around an in-memory word-level tokenizer.
``blip2_opt_2_7b_config`` is the full-size BLIP-2 OPT-2.7b architecture (random weights) for the
GPU benchmark. torch and transformers are imported inside the functions only.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

TinyFamily = Literal["blip2", "blip2_t5", "florence2", "kosmos2", "llava"]
TINY_FAMILIES: tuple[TinyFamily, ...] = ("blip2", "blip2_t5", "florence2", "kosmos2", "llava")

# The llava-1.5 chat format: "USER: <image>\n<prompt> ASSISTANT:".
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}{% endfor %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

_WORDS = (  # noqa: SIM905 - a word list reads better as a sentence
    "a an the of in on at with and is are this that what image photo picture question: answer: "
    "describe detail shown does cat dog person man woman chart screenshot red blue green table "
    "sitting standing street room sky tree car house"
).split()


def _transformers() -> Any:
    """The transformers module, untyped on purpose: its partial annotations are not ours to fix."""
    importlib.import_module("transformers.models.kosmos2.configuration_kosmos2")
    return importlib.import_module("transformers")


def _tokenizer(
    vocab_size: int,
    *,
    specials: list[str],
    add_bos: bool,
    extra_special: list[str] | None = None,
    named_special: dict[str, str] | None = None,
) -> Any:
    """A lower-casing word-level tokenizer: ``<s> <pad> </s> <unk>`` at ids 0-3, then ``specials``,
    English words and filler words up to ``vocab_size``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    tf = _transformers()

    words = ["<s>", "<pad>", "</s>", "<unk>", *specials, *_WORDS]
    words += [f"w{i}" for i in range(max(0, vocab_size - len(words)))]
    vocab = {word: i for i, word in enumerate(words[:vocab_size])}
    backend = Tokenizer(models.WordLevel(vocab, "<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 0)]
        )
    kwargs: dict[str, Any] = {}
    if extra_special:
        kwargs["additional_special_tokens"] = extra_special
    if named_special:  # e.g. {"image_token": "<image>"} -> tokenizer.image_token(_id)
        kwargs["extra_special_tokens"] = named_special
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    return tf.PreTrainedTokenizerFast(tokenizer_object=backend, **special, **kwargs)


def build_tiny(family: TinyFamily, *, seed: int = 0) -> tuple[Any, Any]:
    """``(model, processor)`` for a tiny random model of ``family`` (eval mode, fp32, CPU)."""
    import torch

    torch.manual_seed(seed)
    builders = {
        "blip2": _tiny_blip2_opt,
        "blip2_t5": _tiny_blip2_t5,
        "florence2": _tiny_florence2,
        "kosmos2": _tiny_kosmos2,
        "llava": _tiny_llava,
    }
    if family not in builders:
        raise ValueError(f"no tiny model for {family!r}; expected one of {TINY_FAMILIES}")
    model, processor = builders[family]()
    return model.eval(), processor


def _blip2_vision_qformer() -> tuple[Any, Any]:
    tf = _transformers()

    vision = tf.Blip2VisionConfig(
        image_size=30,
        patch_size=2,
        num_channels=3,
        hidden_size=32,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
    )
    qformer = tf.Blip2QFormerConfig(
        vocab_size=99,
        hidden_size=32,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
        bos_token_id=0,
    )
    return vision, qformer


def _blip2_processor(*, add_bos: bool) -> Any:
    tf = _transformers()

    # "<image>" at id 4 == image_token_index; no tokenizer image_token attribute (see providers.md).
    tokenizer = _tokenizer(99, specials=["<image>"], add_bos=add_bos)
    return tf.Blip2Processor(
        image_processor=tf.BlipImageProcessor(size={"height": 30, "width": 30}),
        tokenizer=tokenizer,
        num_query_tokens=10,
    )


def _tiny_blip2_opt() -> tuple[Any, Any]:
    tf = _transformers()
    text = tf.OPTConfig(
        vocab_size=99,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        ffn_dim=4,
        max_position_embeddings=512,
        eos_token_id=2,
        pad_token_id=1,
        bos_token_id=0,
        embed_dim=16,
        word_embed_proj_dim=16,
    )
    return _tiny_blip2_with(text, add_bos=True)


def _tiny_blip2_with(text: Any, *, add_bos: bool) -> tuple[Any, Any]:
    """A tiny BLIP-2 around ``text`` (OPT or T5 config): vision tower and Q-Former shared."""
    tf = _transformers()
    vision, qformer = _blip2_vision_qformer()
    config = tf.Blip2Config(
        vision_config=vision,
        qformer_config=qformer,
        text_config=text,
        num_query_tokens=10,
        image_token_index=4,
    )
    return tf.Blip2ForConditionalGeneration(config), _blip2_processor(add_bos=add_bos)


def _tiny_blip2_t5() -> tuple[Any, Any]:
    tf = _transformers()
    text = tf.T5Config(
        vocab_size=99,
        d_model=16,
        d_kv=4,
        d_ff=8,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        decoder_start_token_id=1,
        pad_token_id=1,
        eos_token_id=2,
    )
    return _tiny_blip2_with(text, add_bos=False)


def _tiny_florence2() -> tuple[Any, Any]:
    tf = _transformers()

    text_config = {
        "model_type": "bart",
        "vocab_size": 99,
        "max_position_embeddings": 64,
        "encoder_layers": 1,
        "encoder_ffn_dim": 8,
        "encoder_attention_heads": 1,
        "decoder_layers": 1,
        "decoder_ffn_dim": 8,
        "decoder_attention_heads": 1,
        "d_model": 8,
        "activation_function": "gelu",
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "activation_dropout": 0.1,
        "eos_token_id": 2,
        "bos_token_id": 0,
        "pad_token_id": 1,
    }
    vision_config = {
        "drop_path_rate": 0.1,
        "patch_size": [7],
        "depths": [1],
        "patch_stride": [4],
        "patch_padding": [3],
        "patch_prenorm": [False],
        "embed_dim": [8],
        "num_heads": [1],
        "num_groups": [1],
        "window_size": 12,
        "activation_function": "gelu",
        "projection_dim": 8,
    }
    config = tf.Florence2Config(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=4,
        initializer_range=0.02,
    )
    tokenizer = _tokenizer(
        99, specials=["<image>"], add_bos=False, named_special={"image_token": "<image>"}
    )
    # (B,3,8,8) pixels give exactly 5 image features.
    image_processor = tf.CLIPImageProcessor(
        size={"height": 8, "width": 8},
        crop_size={"height": 8, "width": 8},
        do_center_crop=False,
        image_seq_length=5,
    )
    processor = tf.Florence2Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        post_processor_config={"pure_text": {}},
    )
    return tf.Florence2ForConditionalGeneration(config), processor


def _tiny_kosmos2() -> tuple[Any, Any]:
    tf = _transformers()

    text = tf.models.kosmos2.configuration_kosmos2.Kosmos2TextConfig(
        vocab_size=99,
        embed_dim=32,
        layers=2,
        attention_heads=4,
        ffn_dim=37,
        max_position_embeddings=512,
    )
    vision = tf.models.kosmos2.configuration_kosmos2.Kosmos2VisionConfig(
        image_size=32,
        patch_size=4,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
    )
    config = tf.Kosmos2Config(
        text_config=text.to_dict(), vision_config=vision.to_dict(), latent_query_num=3
    )
    # 60 words + 11 Kosmos-2 tag tokens + 16 patch-index tokens stay below the 99-word vocab.
    tokenizer = _tokenizer(60, specials=[], add_bos=False)
    image_processor = tf.CLIPImageProcessor(
        size={"height": 32, "width": 32},
        crop_size={"height": 32, "width": 32},
        do_center_crop=False,
    )
    processor = tf.Kosmos2Processor(
        image_processor=image_processor, tokenizer=tokenizer, num_patch_index_tokens=16
    )
    return tf.Kosmos2ForConditionalGeneration(config), processor


def _tiny_llava() -> tuple[Any, Any]:
    tf = _transformers()

    text_config = {
        "model_type": "llama",
        "vocab_size": 99,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
        "hidden_act": "gelu",
        "max_position_embeddings": 512,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    }
    vision_config = {
        "image_size": 8,
        "patch_size": 2,
        "num_channels": 3,
        "hidden_size": 32,
        "projection_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 37,
    }
    config = tf.LlavaConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_index=4,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=16,
    )
    tokenizer = _tokenizer(99, specials=["<image>"], add_bos=True, extra_special=["<image>"])
    image_processor = tf.CLIPImageProcessor(
        size={"height": 8, "width": 8}, crop_size={"height": 8, "width": 8}, do_center_crop=False
    )
    # (8/2)^2 = 16 patches + CLS, minus CLS for the "default" strategy = 16 image tokens.
    processor = tf.LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=2,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    return tf.LlavaForConditionalGeneration(config), processor


def blip2_opt_2_7b_config() -> Any:
    """The architecture of ``Salesforce/blip2-opt-2.7b`` (ViT-g/14 + Q-Former + OPT-2.7b, about
    3.7B parameters), written out so that no download is needed."""
    tf = _transformers()

    vision = tf.Blip2VisionConfig(
        hidden_size=1408,
        intermediate_size=6144,
        num_hidden_layers=39,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        hidden_act="gelu",
        layer_norm_eps=1e-6,
        qkv_bias=True,
    )
    qformer = tf.Blip2QFormerConfig(
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
        cross_attention_frequency=2,
        encoder_hidden_size=1408,
    )
    text = tf.OPTConfig(
        vocab_size=50304,
        hidden_size=2560,
        num_hidden_layers=32,
        num_attention_heads=32,
        ffn_dim=10240,
        max_position_embeddings=2048,
        word_embed_proj_dim=2560,
        do_layer_norm_before=True,
        bos_token_id=2,
        eos_token_id=2,
        pad_token_id=1,
    )
    return tf.Blip2Config(
        vision_config=vision,
        qformer_config=qformer,
        text_config=text,
        num_query_tokens=32,
        image_token_index=50265,
    )


def build_blip2_opt_2_7b(*, dtype: Any, device: str, seed: int = 0) -> tuple[Any, Any]:
    """Full-size BLIP-2 OPT-2.7b with random weights (built directly on ``device`` in ``dtype``)
    and a processor whose tokenizer is a synthetic 50,304-word vocabulary."""
    import torch

    tf = _transformers()

    torch.manual_seed(seed)
    config = blip2_opt_2_7b_config()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = tf.Blip2ForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model = model.to(device=device, dtype=dtype).eval()
    # As from_pretrained does (_keep_in_fp32_modules): the Q-Former stays fp32 under fp16.
    if dtype == torch.float16:
        model.qformer.to(torch.float32)
        model.query_tokens.data = model.query_tokens.data.to(torch.float32)
    tokenizer = _tokenizer(50265, specials=[], add_bos=True)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    processor = tf.Blip2Processor(
        image_processor=tf.BlipImageProcessor(size={"height": 224, "width": 224}),
        tokenizer=tokenizer,
        num_query_tokens=32,
    )
    return model, processor
