"""trajcross_jax: TRAJCROSS trajectory <-> image cross-modal retrieval in JAX/Flax."""
