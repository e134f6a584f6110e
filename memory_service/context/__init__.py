"""Context: a query and a budget in, the context for the predictor out (see `pipeline`),
configured by `config.ContextConfig`."""
