"""distillation experiment package."""
