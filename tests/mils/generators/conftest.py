"""The generators' tests share one tiny random Llama with a word-level ChatML tokenizer."""

import pytest
import torch


@pytest.fixture(scope="module")
def tiny():
    """(model, tokenizer): a 2-layer random Llama and benchmarks.gpu_models' word tokenizer (no files)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from benchmarks.gpu_models import word_tokenizer

    tok = word_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    return LlamaForCausalLM(config).eval(), tok
