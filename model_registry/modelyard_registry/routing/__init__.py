"""Per-request routing: evidence, the adequacy predictor, the pure decision, replay, the cascade."""
