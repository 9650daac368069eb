"""What a config names, made real: resolving and building the generator and scorer (``build``), components
by name and plugins (``registry``), the initial caption banks (``bank``), caption memories (``memory``) and a
vector index over a large one (``bank_index``), the response cache, the VLM baselines."""

from mils.exports import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.components.bank": "AUDIO_BANK_PROMPT BANK_PROMPT generate_bank read_labels save_bank",
    "mils.components.memory": "build_memory read_corpus",
    "mils.components.bank_index": "BankIndex build_index",
    "mils.components.build": "build_generator build_scorer ensure_generated_bank load_seed_captions",
    "mils.components.plan": "RunPlan plan_run plan_scorer",
    "mils.components.response_cache": "CACHE_FILE ResponseCache",
})
