"""A run's settings: the run config and its reader (``run_config``), the named profiles (``profiles``), and
what a task is (``task_specs``) and the built-in tasks, one module each (``tasks``)."""

from mils.exports import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.config.foreign": "check_foreign",
    "mils.config.metrics": "CAPTION_METRICS HEADLINE METRICS Metric VERDICTS headline higher_is_better "
        "metric_names primary_metric register_metric",
    "mils.config.profiles": "DEMO_SETTINGS SMOLLM2_GGUF offline_gap",
    "mils.config.run_config": "DatasetConfig RunConfig ExecutorConfig ScorerConfig TrackingConfig build_config "
        "config_read_back load_config read_run_config read_yaml set_dotted",
    "mils.config.task_specs": "CommandInput TaskCommand TaskSpec captioning_task get_task register_task task_names",
    "mils.config.tasks.style_transfer": "pair_id",
    "mils.config.tasks.text_to_image": "prompt_id",
})
