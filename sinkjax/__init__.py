"""sinkjax: attention sinks and active-dormant heads, measured and predicted, in JAX."""
