"""Forecast evaluation: proper scoring rules, saved forecasts scored against outcomes,
leave-site-out and time-ordered cross-validation, and PSIS-LOO."""
