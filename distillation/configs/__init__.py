"""Configs of the distillation experiments (`get_config()` per file)."""
