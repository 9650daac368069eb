"""What runs a task over samples: the runner (``runner``), the image tasks (text-to-image, style transfer),
cross-modal arithmetic, and the process-wide model cache."""
