"""Protocol-ready text for ``power`` results: the design, the population, the answer, the assumptions.

What ``--json`` prints is the full record; these few lines are what a trial statistician pastes
into a protocol: the design, which services, the answer with its Monte Carlo interval, power at
the posterior mean, the assumptions and the references.
"""

from __future__ import annotations

from typing import Any

from mbct_bayes._format import probability
from mbct_bayes.power._kernel import ANALYSIS_TEXT

ASSURANCE_REFERENCE = "assurance: O'Hagan, Stevens & Campbell 2005"
POPULATION_TEXT = {
    "fitted_sites": "the fitted data's services, resampled for each simulated trial",
    "candidates": "the candidate services given, randomised to the arms in each simulated trial",
    "profile": "all services alike (one profile)",
}



def share(value: float) -> str:
    """A posterior probability to 3 decimals, without claiming certainty: ``> 0.999`` / ``< 0.001``."""
    return probability(value, 3)


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def _interval(result: dict[str, Any], key: str) -> str:
    level = result.get("ci_level", 0.95)
    return f"{result[key]:.3f} ({100 * level:g}% Monte Carlo interval {result[key + '_mc_low']:.3f}-{result[key + '_mc_high']:.3f})"


def _design(result: dict[str, Any]) -> str:
    sizes = "equal sizes" if not result.get("cv") else f"sizes varying with CV {result['cv']:g}"
    analysis = ANALYSIS_TEXT.get(result.get("analysis", ""), f"analysis {result.get('analysis')!r}")
    return (
        f"Design: two arms of {result['clusters_per_arm']} clusters, {result['cluster_size']} members per cluster "
        f"({sizes}); two-sided alpha {result['alpha']:g}; {analysis}."
    )


def assurance_text(result: dict[str, Any]) -> str:
    """The summary of :func:`mbct_bayes.power.assurance` (or a search by assurance) as lines."""
    lines = [_design(result)]
    if result.get("lever") is not None:
        lines.append(
            f"Intervention: moves {result['lever']} by {float(result['delta']):+g} on its scale in every intervention "
            f"cluster; intended direction: {result['direction']} in embedding."
        )
    else:
        lines.append(f"Effect: the posterior draws given; intended direction: {result['direction']} in embedding.")
    population = result.get("population", "profile")
    where = POPULATION_TEXT.get(population, population)
    if population == "candidates":
        where += f" ({result['services']} services{', stratified by region' if result.get('stratify') else ''})"
    elif population == "fitted_sites":
        where += f" ({result['services']} services)"
    elif result.get("draws_file"):
        where += ", from a table of draws"
    lines.append(f"Population of services: {where}.")
    trials = f"{result['sims']} simulated trials over {result['draws_used']} posterior draws"
    lines.append(f"Assurance: {_interval(result, 'assurance')}; {trials}.")
    lines.append(f"Power at the posterior mean: {_interval(result, 'power_at_posterior_mean')}.")
    implied = (
        f"Implied: control {_pct(result['p0_marginal'])}, intervention {_pct(result['p1_marginal'])} "
        f"(population-averaged); proportion-scale ICC {result['icc']:.3f}"
    )
    if result.get("clipped_share"):
        implied += f"; {_pct(result['clipped_share'])} of intervention clusters' moves cut at the end of the scale"
    lines.append(implied + ".")
    lines.append(
        f"P(effect in the intended direction) {share(result['p_effect_in_direction'])}; assurance cannot exceed "
        f"{result['assurance_bound']:.3f}."
    )
    if "actual_size" in result:
        lines.append(
            f"Type-I error of the analysis in these trials with the effect removed: {result['actual_size']:.3f} "
            f"(Monte Carlo interval {result['size_mc_low']:.3f}-{result['size_mc_high']:.3f}, {result['size_sims']} "
            f"trials); {'holds' if result['size_holds'] else 'does not hold'} alpha {result['alpha']:g}."
        )
    lines.append("Assumptions:")
    lines.extend(f"  - {sentence}" for sentence in result.get("assumptions", []))
    lines.append(f"References: {ASSURANCE_REFERENCE}; seed {result['seed']} (same seed, same numbers).")
    return "\n".join(lines)


def simulate_text(result: dict[str, Any]) -> str:
    """The summary of :func:`mbct_bayes.power.simulate`."""
    return "\n".join(
        [
            _design(result),
            f"Effect: typical-cluster P(outcome) {result['p0']:.3f} -> {result['p1']:.3f} (odds ratio "
            f"{result['odds_ratio']:.3g}); arm proportions {_pct(result['p0_marginal'])} -> "
            f"{_pct(result['p1_marginal'])}.",
            f"Between clusters: SD {result['sigma_b']:.3g} on the logit scale (proportion-scale ICC "
            f"{result['icc']:.3g} at p0).",
            f"Power: {_interval(result, 'power')}; {result['sims']} simulated trials.",
            f"Closed-form reference (Donner-Klar, t): {result['power_analytic']:.3f}.",
            "Assumptions: logistic-normal clusters (every cluster's log odds shifted by the same odds ratio); "
            "a success is significant in the direction of p1 - p0.",
            f"References: cluster-level analysis Hayes & Moulton 2017; seed {result['seed']} (same seed, same numbers).",
        ]
    )


def analytic_text(result: dict[str, Any]) -> str:
    """The summary of :func:`mbct_bayes.power.analytic`."""
    method = {"donner-klar": "Donner-Klar design effect", "hayes-bennett": "Hayes-Bennett"}.get(
        result.get("method", ""), result.get("method")
    )
    solved = result.get("solved_for", "power")
    clusters = f"{result['clusters_per_arm_design']} clusters"
    size = f"{result['cluster_size_design']} members per cluster"
    if solved == "clusters_per_arm":
        clusters += f" (exact solution {result['clusters_per_arm']:.4g})"
    elif solved == "cluster_size":
        size += f" (exact solution {result['cluster_size']:.4g})"
    variation = f"ICC {result['icc']:.3g}" if result.get("icc") is not None else f"k {result.get('k'):.3g}"
    if result.get("cv"):
        variation += f", cluster sizes varying with CV {result['cv']:g}"
    return "\n".join(
        [
            f"Design: two arms of {clusters}, {size}; two-sided alpha {result['alpha']:g}; "
            f"{result.get('dist', 'normal')} reference.",
            f"Effect: arm proportions {result['p0']:.3f} -> {result['p1']:.3f} (odds ratio "
            f"{result['odds_ratio']:.3g}); {variation}.",
            f"Power: {result['power']:.3f} (solved for {solved.replace('_', ' ')}); at the rounded design "
            f"{result.get('power_at_design', result['power']):.3f}.",
            f"Method: {method} (closed form; clusterPower / CRTSize conventions).",
        ]
    )


def search_text(result: dict[str, Any]) -> str:
    """The summary of :func:`mbct_bayes.power.search`: what was found, then its design's summary."""
    metric = "assurance" if "assurance" in result else "power"
    solved = "clusters per arm" if result.get("solved_for") == "clusters_per_arm" else "members per cluster"
    key = "clusters_per_arm" if result.get("solved_for") == "clusters_per_arm" else "cluster_size"
    value = result.get(f"{key}_design", result[key])
    head = f"Search: the fewest {solved} reaching {metric} {result['target']:g} is {value}."
    if result.get("sims") is None:  # closed form
        body = analytic_text(result)
    elif metric == "assurance":
        body = assurance_text(result)
    else:
        body = simulate_text(result)
    return head + "\n" + body + "\nCurve of the candidates evaluated:"


def _sw_design(result: dict[str, Any]) -> str:
    return (
        f"Design: cross-sectional stepped wedge, {result['clusters']} clusters in "
        f"{len(result['sequences'])} sequences ({','.join(map(str, result['sequences']))}) over "
        f"{result['periods']} periods (first all control), {result['cluster_size']:g} people per cluster-period; "
        f"two-sided alpha {result['alpha']:g}."
    )


def _sw_time(result: dict[str, Any]) -> str:
    return "period fixed effects" if result["time"] == "categorical" else "a linear time trend"


def stepped_wedge_text(result: dict[str, Any]) -> str:
    """The summary of :func:`mbct_bayes.power.stepped_wedge` (analytic, and simulated with sims)."""
    lines = [
        _sw_design(result),
        f"Outcome: proportion {result['p0']:g} under control, {result['p1']:g} under intervention; "
        f"between-cluster SD tau {result['tau']:.4g} (ICC {result['icc']:.4g}).",
        f"Power: {result['power']:.3f} (analytic: linear mixed model with random cluster intercepts and "
        f"{_sw_time(result)}; SE of p1 - p0 {result['se_theta']:.4g}; normal reference).",
    ]
    if "power_simulated" in result:
        lines.append(
            f"Simulated power: {_interval(result, 'power_simulated')}; {result['sims']} trials, seed "
            f"{result['seed']}; truth: proportion p0 + a_i or p1 + a_i with a_i ~ N(0, tau^2), binomial counts; "
            f"analysis: moment variance components, GLS, t with {result['df']} df."
        )
        if result["clipped_share"] > 0:
            lines.append(
                f"{100 * result['clipped_share']:.2g}% of simulated cluster probabilities were clipped into (0, 1)."
            )
    lines.append("Assumptions: " + "; ".join(result["assumptions"]) + ".")
    lines.append(f"Reference: {result['method']}.")
    return "\n".join(lines)


def stepped_wedge_assurance_text(result: dict[str, Any]) -> str:
    """The summary of :func:`mbct_bayes.power.stepped_wedge_assurance`."""
    population = result.get("population", "profile")
    where = POPULATION_TEXT.get(population, population).replace("to the arms", "to the sequences")
    if population in ("candidates", "fitted_sites"):
        strata = ", stratified by region" if result.get("stratify") else ""
        where += f" ({result['services']} services{strata})"
    implied = (
        f"Implied: control {_pct(result['p0_marginal'])}, intervention {_pct(result['p1_marginal'])} "
        f"(population-averaged); proportion-scale ICC {result['icc']:.3f}"
    )
    if result.get("clipped_share"):
        implied += f"; {_pct(result['clipped_share'])} of clusters' moves cut at the end of the scale"
    lines = [
        _sw_design(result),
        f"Analysis: linear mixed model on the cluster-period proportions with random cluster intercepts and "
        f"{_sw_time(result)} (moment variance components, GLS, t with {result['df']} df).",
        f"Intervention: moves {result['lever']} by {float(result['delta']):+g} on its scale in every cluster from its "
        f"step on; intended direction: {result['direction']} in embedding.",
        f"Population of services: {where}.",
        f"Assurance: {_interval(result, 'assurance')}; {result['sims']} simulated trials over "
        f"{result['draws_used']} posterior draws.",
        f"Power at the posterior mean: {_interval(result, 'power_at_posterior_mean')}.",
        implied + ".",
        f"P(effect in the intended direction) {share(result['p_effect_in_direction'])}; assurance cannot exceed "
        f"{result['assurance_bound']:.3f}.",
        "Assumptions:",
        *(f"  - {sentence}" for sentence in result.get("assumptions", [])),
        f"References: {result['method']}; {ASSURANCE_REFERENCE}; seed {result['seed']} (same seed, same numbers).",
    ]
    return "\n".join(lines)
