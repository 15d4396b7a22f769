"""A tiny Qwen2-VL checkpoint built on the spot, for tests and demos: no download, a fraction of a second.

    from realqa_model.tiny import build_tiny_checkpoint
    path = build_tiny_checkpoint(tmp_path / "tiny")                       # random weights
    path = build_tiny_checkpoint(tmp_path / "six", script={" ": {"6": 30.0}})  # writes a chosen answer
    path = build_tiny_checkpoint(tmp_path / "q25", family="qwen2_5_vl")     # a Qwen2.5-VL instead

The folder is an ordinary transformers checkpoint (``config.json``, ``model.safetensors``, tokenizer and
image-processor files) that :class:`realqa_model.mllm_scorer.MllmScorer` loads like a real Qwen2-VL:

* the model is a ``Qwen2VLForConditionalGeneration`` (or, with ``family="qwen2_5_vl"``, a
  ``Qwen2_5_VLForConditionalGeneration``) of about 0.17 M parameters (2 text layers of width 64, a 2-block
  vision tower);
* the tokenizer is character level (every printable ASCII character is one token, so digits and '.' are
  single tokens as with Qwen2's tokenizer) plus the Qwen2-VL special tokens; text decodes back exactly;
* the image processor keeps images between 56x56 and 112x112 pixels, so an image is 4-16 visual tokens.

**Scripted answers.** A random model writes noise. To check that a scorer reads an answer correctly, a test
needs a model that writes a *known* answer with *known* probabilities. With ``script`` the builder makes the
model a bigram model: every decoder layer's output projections are zeroed, so the last hidden state is just
the (normalised) embedding of the current token, and ``lm_head`` is solved so that after each scripted token
the next-token logits are exactly the ones given (every other token gets ``floor``). Scripted logits hold to
about 1e-4; tokens the script does not mention get arbitrary logits.

Pure torch/transformers; nothing here imports Django.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["SPECIAL_TOKENS", "build_tiny_checkpoint", "tiny_tokenizer"]

#: The Qwen2-VL special tokens, in the order the tiny vocabulary holds them.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def tiny_tokenizer(extra_tokens: Iterable[str] = ()):  # -> PreTrainedTokenizerFast
    """A character-level tokenizer with the Qwen2-VL special tokens; ``extra_tokens`` become single tokens
    too (a test that scripts a whole phrase can make it one token)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    extra = [token for token in dict.fromkeys(extra_tokens) if len(token) > 1]
    vocab = {token: index for index, token in enumerate(["[UNK]", *string.printable, *extra, *SPECIAL_TOKENS])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per character
    backend.decoder = decoders.Fuse()  # concatenate, so text decodes back exactly
    backend.add_tokens([AddedToken(token, normalized=False) for token in extra])
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        padding_side="left",
    )


def build_tiny_checkpoint(
    path: str | Path,
    *,
    seed: int = 0,
    script: Mapping[str, Mapping[str, float]] | None = None,
    floor: float = -30.0,
    extra_tokens: Iterable[str] = (),
    family: str = "qwen2_vl",
) -> Path:
    """Build a tiny Qwen2-VL checkpoint into ``path`` (created) and return the path.

    Args:
        seed: the random weights are a function of the seed alone.
        script: ``{token: {next token: logit}}``: after ``token`` the model's next-token logits are the
            given ones, and ``floor`` for every token not named. Tokens are strings of the tiny vocabulary:
            single characters, the special tokens, or ``extra_tokens``. At most 64 scripted tokens.
        floor: the logit of the tokens a script entry leaves out.
        extra_tokens: multi-character strings to add to the vocabulary as single tokens.
        family: ``"qwen2_vl"`` or ``"qwen2_5_vl"`` (the transformers model type).
    """
    import torch
    import transformers
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {', '.join(_FAMILIES)}, got {family!r}")

    path = Path(path)
    tokenizer = tiny_tokenizer(extra_tokens)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    hidden = 64
    config_class, model_class, vision = _FAMILIES[family]
    config = getattr(transformers, config_class)(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
            bos_token_id=None,
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config).eval()
    with torch.no_grad():
        # The default init (std 0.02) gives near-flat logits whose top two differ by float noise; a wider
        # lm_head makes a random model's greedy answer a clear choice, so it does not flip with padding.
        model.lm_head.weight.mul_(25.0)
        if script:
            _script(model, tokenizer, script, floor)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    Qwen2VLImageProcessorPil(size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112}).save_pretrained(path)
    return path


_COMMON_VISION = dict(num_heads=4, patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
# model type -> (config class, model class, vision config); both vision towers end in width 64
_FAMILIES = {
    "qwen2_vl": (
        "Qwen2VLConfig",
        "Qwen2VLForConditionalGeneration",
        dict(_COMMON_VISION, depth=2, embed_dim=32, hidden_size=64, mlp_ratio=2, in_chans=3),
    ),
    "qwen2_5_vl": (
        "Qwen2_5_VLConfig",
        "Qwen2_5_VLForConditionalGeneration",
        dict(_COMMON_VISION, depth=2, hidden_size=32, intermediate_size=64, out_hidden_size=64, in_channels=3,
             window_size=56, fullatt_block_indexes=[1]),
    ),
}


def _script(model, tokenizer, script: Mapping[str, Mapping[str, float]], floor: float) -> None:
    import torch

    text_model = model.model.language_model
    vocab = len(tokenizer)

    def token_id(token: str) -> int:
        index = tokenizer.convert_tokens_to_ids(token)
        if index is None or index == tokenizer.unk_token_id:
            raise ValueError(f"{token!r} is not a token of the tiny vocabulary")
        return int(index)

    sources = [token_id(token) for token in script]
    if len(sources) > text_model.config.hidden_size:
        raise ValueError(f"at most {text_model.config.hidden_size} tokens can be scripted, got {len(sources)}")
    targets = torch.full((vocab, len(sources)), float(floor))
    for column, nexts in enumerate(script.values()):
        for token, logit in nexts.items():
            targets[token_id(token), column] = float(logit)

    # No layer adds anything to the residual stream: the last hidden state is the current token's embedding.
    for layer in text_model.layers:
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    text_model.norm.weight.fill_(1.0)
    normed = text_model.norm(text_model.embed_tokens.weight[sources].float()).T.double()  # (hidden, scripted)
    # lm_head @ normed = targets, solved exactly (the scripted embeddings are independent: fewer than hidden).
    solution = targets.double() @ torch.linalg.pinv(normed)
    model.lm_head.weight.copy_(solution.to(model.lm_head.weight.dtype))
