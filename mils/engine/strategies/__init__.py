"""The strategies beside MILS, one module each (mils/engine/strategy.py: the extension point, MILS itself)."""

from mils.engine.strategies import best_of_n, gepa, guided, memory_concepts, opro, retrieval  # noqa: F401 (each module registers its strategy)
