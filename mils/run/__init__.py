"""What runs a task over samples: the runner (``runner``), the image tasks (text-to-image, style transfer),
cross-modal arithmetic, and the process-wide model cache."""

from mils.exports import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.run.arithmetic": "run_arithmetic",
    "mils.run.model_cache": "model_lock models_for runner_for",
    "mils.run.runner": "TaskRunner check_media loop_overhead run_into_folder",
})
