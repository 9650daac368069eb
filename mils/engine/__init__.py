"""The optimisation itself: the loop (``loop``, lockstep) and its async schedule (``schedule``), how a
meta-prompt is filled (``prompts``; each task's own is in mils/config/tasks/), reading replies (``parsing``),
how a strategy spends a sample's steps (``strategy``; MILS's peers in ``strategies/``), sampling settings,
seeds, a sample's budget and cost ledger (``budget``, ``cost``), what a sample records (``records``), progress."""

from mils.exports import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.engine.cost": "cost_line peak_memory_mb run_cost shares step_costs",
    "mils.engine.loop": "LoopOptions Optimiser spent",
    "mils.engine.parsing": "annotate_reply",
    "mils.engine.progress": "advance shared_bar",
    "mils.engine.prompts": "PromptTemplate",
    "mils.engine.records": "SampleResult StepCost StepRecord StepTrace",
    "mils.engine.sampling": "SamplingOptions",
    "mils.engine.schedule": "run_async",
    "mils.engine.strategy": "Listing PromptView Strategy get_strategy strategy_title",
})
