"""A tiny Qwen2.5-VL built offline: tokenizer, processor (with chat template) and random weights.

Used by the tests, the ``tiny`` training preset and the notebooks' smoke mode. Nothing is
downloaded: the byte-level BPE tokenizer is trained here on a small built-in corpus, the
processor is assembled from ``Qwen2VLImageProcessor`` + ``Qwen2VLVideoProcessor``, and the model
is a ``Qwen2_5_VLForConditionalGeneration`` with a few small layers whose special-token ids match
the tokenizer. The same loading code then serves real checkpoints (``Qwen/Qwen2.5-VL-3B-Instruct``)
on a networked machine.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The Qwen2-VL chat-template conventions: a default system turn, images as
# <|vision_start|><|image_pad|><|vision_end|>, text parts verbatim.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: the chain format, degradation names, QA words."""
    from factory import degrade
    from factory.chains.format import FIELDS, TAGS

    names = degrade.names()
    lines = []
    for i, n in enumerate(names):
        s = f"{(i * 7 % 100) / 100:.2f}"
        lines.append(f"<TYPE>{n}({s}), {names[(i + 3) % len(names)]}(0.{i % 10}5)<TYPE_END>")
        lines.append(f"The {n} of the image hides fine details, edges and colours of the objects.")
    for f in FIELDS:
        o, c = TAGS[f]
        lines.append(f"{o} {f} text {c}")
    lines += [
        "<INFLUENCE>The damage lowers contrast and blurs small objects, but the main shapes remain visible."
        "<INFLUENCE_END>",
        "<REASONING>Looking past the damage, the picture shows a person, a cat, a cup of coffee on a table, "
        "a rocket on a launch pad, a motorcycle, stars and galaxies, a retina, cells and tissue. "
        "The question asks what is shown, which colour it has, how many there are, and where it is.<REASONING_END>",
        "<CONCLUSION>The visible evidence points to the answer.<CONCLUSION_END>",
        "<ANSWER>0<ANSWER_END> <ANSWER>1<ANSWER_END> <ANSWER>2<ANSWER_END> <ANSWER>3<ANSWER_END>",
        "Question: What is in the picture? Options: 0. a cat 1. a dog 2. a car 3. a cup. "
        "Answer with the option number. First name the degradations and their intensities.",
        "yes no one two three four five six seven eight nine ten red green blue white black orange",
    ]
    return lines * 4


def build_tokenizer(vocab_size: int = 1024):
    """Train a byte-level BPE on the built-in corpus and wrap it as a Qwen2 tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    model = tok.model
    vocab = tok.get_vocab()
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        model.save(d)
        merges_lines = Path(d, "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(m.split(" ")) for m in merges_lines if m and not m.startswith("#version")]
    qt = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None)
    qt.add_special_tokens(
        {"additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")]}
    )
    qt.chat_template = CHAT_TEMPLATE
    del json
    return qt


def build_processor(tokenizer=None, *, min_pixels: int = 28 * 28 * 4, max_pixels: int = 28 * 28 * 16):
    """Qwen2.5-VL processor (image + video processors, chat template) around ``tokenizer``."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tokenizer = tokenizer or build_tokenizer()
    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def build_config(tokenizer, *, hidden_size: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2):
    """A small ``Qwen2_5_VLConfig`` whose special-token ids match ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    head_dim = hidden_size // heads
    half = head_dim // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]  # temporal, height, width; sums to head_dim/2
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": hidden_size * 2,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_tiny_model(out_dir: str | Path | None = None, *, seed: int = 0):
    """Build (and optionally save to ``out_dir``) a random-weight tiny Qwen2.5-VL.

    Returns ``(model, processor)``. With ``out_dir`` the folder loads back with
    ``AutoModelForImageTextToText.from_pretrained`` and ``AutoProcessor.from_pretrained``.
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    processor = build_processor()
    config = build_config(processor.tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        processor.save_pretrained(out)
    return model, processor
