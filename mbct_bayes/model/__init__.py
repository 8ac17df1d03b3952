"""The hierarchical model: building it from a spec and data, fitting and saving it, its
convergence diagnostics, prior sensitivity, simulation-based calibration and simulated data."""
