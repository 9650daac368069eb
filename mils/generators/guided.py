"""Scorer-guided decoding for the transformers backend (the ZeroCap / ZerAuCap family: the scorer steers the
LLM's token choices during one decode, instead of ranking whole candidates afterwards). One prompt at a time,
with the model's KV cache: at every token the ``width`` likeliest next tokens each extend the line being
written (its list counter left out), the guide scores those lines for the prompt's sample, and the next token
is drawn (seeded) from softmax(log-probability + ``weight`` x the standardised scores). ``width`` x the reply's
tokens text forwards of the scorer: the ledger counts them as the sample's scorer forwards (candidates scored,
scorer seconds) and takes their seconds out of the LLM's (mils/engine/strategy.py: ScorerGuide)."""

from __future__ import annotations

import re

import numpy as np
import torch

from mils.engine.strategy import standardised
from mils.protocols import Guide, Reply, TokenUsage

COUNTER = re.compile(r"^\s*(?:\d+[.)]|[-*])\s*")


def current_line(text: str) -> str:
    """The line a reply is writing, without its list counter ("2. a red" -> "a red")."""
    return COUNTER.sub("", text.rsplit("\n", 1)[-1])


def steered(scores: np.ndarray, logprobs: np.ndarray, weight: float) -> np.ndarray:
    """The draw's probabilities: softmax(log-probability + weight x standardised guide scores)."""
    logits = logprobs + weight * standardised(scores)
    p = np.exp(logits - logits.max())
    return p / p.sum()


@torch.no_grad()
def guided_reply(model, tokenizer, prompt_ids: torch.Tensor, guide: Guide, seed: int, eos_ids: list[int],
                 max_new: int, width: int, weight: float, temperature: float) -> Reply:
    rng = np.random.default_rng(seed)
    past, feed, out = None, prompt_ids, []
    for _ in range(max_new):
        step = model(input_ids=feed, past_key_values=past, use_cache=True)
        past = step.past_key_values
        logprobs = torch.log_softmax(step.logits[0, -1].float() / max(temperature, 1e-5), dim=-1)
        top = torch.topk(logprobs, width)
        options = top.indices.tolist()
        lines = [current_line(tokenizer.decode(out + [t], skip_special_tokens=True)) for t in options]
        probabilities = steered(np.asarray(guide(lines), np.float64), top.values.cpu().numpy().astype(np.float64),
                                weight)
        token = options[int(rng.choice(width, p=probabilities))]
        out.append(token)
        if token in eos_ids:
            break
        feed = torch.tensor([[token]], device=prompt_ids.device)
    finished = bool(out) and out[-1] in eos_ids
    return Reply(tokenizer.decode(out, skip_special_tokens=True), TokenUsage(int(prompt_ids.shape[1]), len(out)),
                 not finished)
