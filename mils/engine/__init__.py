"""The optimisation itself: the loop (``loop``, lockstep) and its async schedule (``schedule``), the prompt
and its meta-prompts (``prompts``, ``official_prompts``), reading replies (``parsing``), sampling settings,
seeds, a sample's budget and cost ledger (``budget``, ``cost``), what a sample records (``records``), progress."""
