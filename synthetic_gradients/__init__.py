"""synthetic_gradients experiment package."""
