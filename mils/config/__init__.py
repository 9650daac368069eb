"""A run's settings: the run config and its reader (``run_config``), the named profiles (``profiles``), and
the tasks with what each needs (``task_specs``)."""
