"""Posterior-predictive planning for sites: predictions, new-site true scores under measurement
error, and the planning questions (what-if, levers, target, rank).

``from mbct_bayes.planning import what_if`` keeps working from before the move to a package."""

from mbct_bayes.planning.scenarios import lever_curve, levers, rank, target, what_if

__all__ = ["lever_curve", "levers", "rank", "target", "what_if"]
