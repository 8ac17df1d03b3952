// mbct-bayes planning page. Every number is computed here from the embedded posterior draws with
// the formulas of mbct_bayes.planning (predict, levers, target) and the common random numbers that
// Python draws for the same seed, so the page and Python agree to rounding. See mbct_bayes/planner.py.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("planner-data").textContent);

  function f64(text) {  // base64 little-endian float64 -> Float64Array
    const bytes = atob(text);
    const buf = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) buf[i] = bytes.charCodeAt(i);
    return new Float64Array(buf.buffer);
  }

  const S = D.S, P = D.n_pred, K = D.recipes.length, NAMES = D.predictors;
  const intercept = f64(D.intercept), beta = f64(D.beta), offset = f64(D.offset), sigmaSite = f64(D.sigma_site);
  const scale = D.scale, center = D.center, recipes = D.recipes;
  const regions = D.regions;
  let uRegion = null, cumShares = null, R = 0;
  if (regions) {
    uRegion = f64(regions.u_region);
    R = regions.labels.length;
    const shares = f64(regions.shares);
    cumShares = new Float64Array(R);
    let acc = 0;
    for (let r = 0; r < R; r++) { acc += shares[r]; cumShares[r] = acc; }
  }
  const crn = {};
  for (const key of Object.keys(D.crn)) {
    crn[key] = {};
    for (const name of Object.keys(D.crn[key])) crn[key][name] = f64(D.crn[key][name]);
  }
  const latent = D.latent ? {
    precPop: f64(D.latent.prec_pop), priorTerm: f64(D.latent.prior_term),
    noiseVar: f64(D.latent.noise_var), roleAdjust: f64(D.latent.role_adjust),
  } : null;
  const pop = D.population;
  const popProfiles = f64(pop.profiles), ghNodes = f64(pop.nodes), ghWeights = f64(pop.weights);

  // ---------------------------------------------------------------- numerics
  function expit(x) { return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)); }
  function clip(x, lo, hi) { return Math.min(Math.max(x, lo), hi); }
  function mean(a) { let t = 0; for (let i = 0; i < a.length; i++) t += a[i]; return t / a.length; }
  function quantile(a, q) {  // numpy's default (linear) method
    const s = Float64Array.from(a).sort();
    const h = (s.length - 1) * q, lo = Math.floor(h), hi = Math.min(lo + 1, s.length - 1), t = h - lo;
    return t >= 0.5 ? s[hi] - (s[hi] - s[lo]) * (1 - t) : s[lo] + (s[hi] - s[lo]) * t;
  }
  // fixed part Intercept + X beta at uncentred scores x (length P) for draw s (model.design's columns)
  function fixedAt(s, x) {
    let eta = 0;
    for (let k = 0; k < K; k++) {
      const r = recipes[k];
      if (r === null) continue;  // a categorical covariate at its reference level
      let v = 1;
      for (let j = 0; j < r.length; j++) v *= x[r[j]] - center[r[j]];
      eta += beta[s * K + k] * v;
    }
    return eta + intercept[s];
  }
  // Gauss-Jordan inverse of a small symmetric positive definite matrix (row-major, n x n)
  function inverse(a, n) {
    const m = new Float64Array(n * 2 * n);
    for (let i = 0; i < n; i++) { for (let j = 0; j < n; j++) m[i * 2 * n + j] = a[i * n + j]; m[i * 2 * n + n + i] = 1; }
    for (let c = 0; c < n; c++) {
      let piv = c;
      for (let i = c + 1; i < n; i++) if (Math.abs(m[i * 2 * n + c]) > Math.abs(m[piv * 2 * n + c])) piv = i;
      if (piv !== c) for (let j = 0; j < 2 * n; j++) { const t = m[c * 2 * n + j]; m[c * 2 * n + j] = m[piv * 2 * n + j]; m[piv * 2 * n + j] = t; }
      const d = m[c * 2 * n + c];
      for (let j = 0; j < 2 * n; j++) m[c * 2 * n + j] /= d;
      for (let i = 0; i < n; i++) {
        if (i === c) continue;
        const f = m[i * 2 * n + c];
        if (f !== 0) for (let j = 0; j < 2 * n; j++) m[i * 2 * n + j] -= f * m[c * 2 * n + j];
      }
    }
    const out = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = m[i * 2 * n + n + j];
    return out;
  }
  function cholesky(a, n) {
    const l = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let t = a[i * n + j];
        for (let k = 0; k < j; k++) t -= l[i * n + k] * l[j * n + k];
        l[i * n + j] = i === j ? Math.sqrt(t) : t / l[j * n + j];
      }
    }
    return l;
  }
  // Student t CDF by the regularized incomplete beta (Numerical Recipes' continued fraction)
  function lgamma(x) {
    const c = [76.18009172947146, -86.50532032941677, 24.01409824083091, -1.231739572450155,
      0.1208650973866179e-2, -0.5395239384953e-5];
    let y = x, tmp = x + 5.5;
    tmp -= (x + 0.5) * Math.log(tmp);
    let ser = 1.000000000190015;
    for (let j = 0; j < 6; j++) ser += c[j] / ++y;
    return -tmp + Math.log(2.5066282746310005 * ser / x);
  }
  function betacf(a, b, x) {
    const tiny = 1e-300;
    let qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    let h = d;
    for (let m = 1; m <= 300; m++) {
      const m2 = 2 * m;
      let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
      d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
      c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
      d = 1 / d; h *= d * c;
      aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
      d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
      c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
      d = 1 / d;
      const del = d * c;
      h *= del;
      if (Math.abs(del - 1) < 1e-14) break;
    }
    return h;
  }
  function betai(a, b, x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const bt = Math.exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * Math.log(x) + b * Math.log(1 - x));
    return x < (a + 1) / (a + b + 2) ? bt * betacf(a, b, x) / a : 1 - bt * betacf(b, a, 1 - x) / b;
  }
  function tcdf(t, df) {
    const tail = 0.5 * betai(df / 2, 0.5, df / (df + t * t));
    return t > 0 ? 1 - tail : tail;
  }
  function normalCdf(x) {  // 1 - erfc(x / sqrt 2) / 2, erfc by Numerical Recipes' Chebyshev fit (|error| < 1.2e-7)
    const z = Math.abs(x) / Math.SQRT2, t = 1 / (1 + 0.5 * z);
    const erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
      t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return x >= 0 ? 1 - erfc / 2 : erfc / 2;
  }
  function tquantile(p, df) {  // by bisection: accurate to 1e-10
    let lo = -1e3, hi = 1e3;
    for (let i = 0; i < 200 && hi - lo > 1e-12; i++) { const mid = (lo + hi) / 2; if (tcdf(mid, df) < p) lo = mid; else hi = mid; }
    return (lo + hi) / 2;
  }

  // ---------------------------------------------------------------- the planning formulas
  const UNKNOWN = -1;
  function streams(kind, region) {
    return crn[kind + "_" + (regions && region === UNKNOWN ? "unknown" : "known")];
  }
  // planning.predict.group_part / typical_part: region part, then (new site) its own effect
  function groupDraws(kind, region) {
    const g = new Float64Array(S), z = streams(kind, region);
    for (let s = 0; s < S; s++) {
      let v = 0;
      if (regions) {
        let r = region;
        if (r === UNKNOWN) {  // mixture: a fitted region drawn in proportion to its sites
          const x = z.u[s] * cumShares[R - 1];
          r = 0;
          while (r < R && cumShares[r] <= x) r++;
          r = Math.min(r, R - 1);
        }
        v = uRegion[s * R + r];
      }
      if (kind === "new") v += z.z_site[s] * sigmaSite[s];
      g[s] = v;
    }
    return g;
  }
  // planning.measured.conditional_true_scores for one site measured by n respondents per construct
  function truthDraws(kind, region, scores, n) {
    const z = streams(kind, region).z_truth, out = new Float64Array(S * P);
    const a = new Float64Array(P * P), rhs = new Float64Array(P), obs = new Float64Array(P);
    for (let s = 0; s < S; s++) {
      for (let i = 0; i < P * P; i++) a[i] = latent.precPop[s * P * P + i];
      for (let j = 0; j < P; j++) {
        obs[j] = n / latent.noiseVar[s * P + j];
        a[j * P + j] += obs[j];
      }
      const cov = inverse(a, P), chol = cholesky(cov, P);
      for (let j = 0; j < P; j++) {
        const adjusted = (scores[j] - center[j]) - latent.roleAdjust[s * P + j];
        rhs[j] = latent.priorTerm[s * P + j] + obs[j] * adjusted;
      }
      for (let j = 0; j < P; j++) {
        let v = 0, w = 0;
        for (let k = 0; k < P; k++) { v += cov[j * P + k] * rhs[k]; w += chol[j * P + k] * z[s * P + k]; }
        out[s * P + j] = v + w + center[j];
      }
    }
    return out;
  }
  // one scenario's draws: the group part and (latent fits) the true scores
  function scenarioDraws(sc, kind) {
    return { kind: kind, group: groupDraws(kind, sc.region), truth: latent ? truthDraws(kind, sc.region, sc.x, sc.n) : null };
  }
  function pDraws(sc, dr, change) {  // P(embedded) per draw; change: {j, delta} moves one score
    const out = new Float64Array(S), x = sc.x.slice();
    if (change && !dr.truth) x[change.j] = clip(x[change.j] + change.delta, scale[change.j][0], scale[change.j][1]);
    const t = new Float64Array(P);
    for (let s = 0; s < S; s++) {
      let fixed;
      if (dr.truth) {
        for (let j = 0; j < P; j++) t[j] = dr.truth[s * P + j];
        if (change) {  // scenarios._moved_truth: a draw already past the scale end stays where it is
          const j = change.j, lo = scale[j][0], hi = scale[j][1];
          t[j] = clip(t[j] + change.delta, Math.min(lo, t[j]), Math.max(hi, t[j]));
        }
        fixed = fixedAt(s, t);
      } else fixed = fixedAt(s, x);
      out[s] = expit(fixed + dr.group[s] + offset[s]);
    }
    return out;
  }
  function summary(a) { return { mean: mean(a), q05: quantile(a, 0.05), q95: quantile(a, 0.95) }; }

  // scenarios.smallest_reaching for one site: exact search over the draws' crossings
  function smallestReaching(a, slope, lo, hi, prob) {
    const need = Math.ceil(prob * S - 1e-9);
    let countLo = 0;
    const events = [];
    for (let s = 0; s < S; s++) {
      const pass = a[s] >= 0;
      if (pass) countLo++;
      const cross = lo - a[s] / slope[s];
      if (slope[s] > 0 && !pass && cross <= hi) events.push([cross, 1]);
      else if (slope[s] < 0 && pass && cross < hi) events.push([cross, -1]);
    }
    events.sort((e, f) => (e[0] - f[0]) || (f[1] - e[1]));  // ties: starts before stops
    let count = countLo, value = NaN, bestEvent = -1, bestValue = lo;
    for (const [key, step] of events) {
      count += step;
      if (step === 1) {
        if (Number.isNaN(value) && count >= need) value = key;
        if (count > bestEvent) { bestEvent = count; bestValue = key; }
      }
    }
    if (countLo >= need) value = lo;
    const loBest = countLo >= bestEvent;
    return { value: value, bestValue: loBest ? lo : bestValue, bestProb: Math.max(countLo, bestEvent) / S };
  }
  function targetOf(sc, dr, j, p, prob) {  // scenarios.target (new site)
    const lo = scale[j][0], hi = scale[j][1];
    const a = new Float64Array(S), slope = new Float64Array(S);
    const xLo = sc.x.slice(), xHi = sc.x.slice(), t = new Float64Array(P);
    xLo[j] = lo; xHi[j] = hi;
    const logitP = Math.log(p / (1 - p));
    for (let s = 0; s < S; s++) {
      let fLo, fHi;
      if (dr.truth) {
        for (let k = 0; k < P; k++) t[k] = dr.truth[s * P + k];
        t[j] = lo; fLo = fixedAt(s, t);
        t[j] = hi; fHi = fixedAt(s, t);
      } else { fLo = fixedAt(s, xLo); fHi = fixedAt(s, xHi); }
      const threshold = logitP - offset[s];
      a[s] = fLo + dr.group[s] - threshold;
      slope[s] = (fHi - fLo) / (hi - lo);
    }
    return smallestReaching(a, slope, lo, hi, prob);
  }

  // power: assurance over the fitted sites as the population of services, analytic per draw
  function assurance(j, delta, c, m, alpha) {
    const N = pop.n_services, lo = scale[j][0], hi = scale[j][1], G = ghNodes.length;
    const x = new Float64Array(P);
    const p0 = new Float64Array(S), p1 = new Float64Array(S), v0 = new Float64Array(S), v1 = new Float64Array(S);
    let effect = 0;
    for (let s = 0; s < S; s++) {
      const sd = sigmaSite[s];
      let m10 = 0, m20 = 0, m11 = 0, m21 = 0;
      for (let i = 0; i < N; i++) {
        const base = (pop.per_draw ? (s * N + i) : i) * P;
        for (let k = 0; k < P; k++) x[k] = popProfiles[base + k];
        const shift = (regions && pop.region[i] >= 0) ? uRegion[s * R + pop.region[i]] : 0;
        const before = fixedAt(s, x) + offset[s] + shift;
        x[j] = clip(x[j] + delta, lo, hi);
        const after = fixedAt(s, x) + offset[s] + shift;
        for (let g = 0; g < G; g++) {
          const q0 = expit(before + sd * ghNodes[g]), q1 = expit(after + sd * ghNodes[g]), w = ghWeights[g];
          m10 += w * q0; m20 += w * q0 * q0; m11 += w * q1; m21 += w * q1 * q1;
        }
      }
      p0[s] = m10 / N; p1[s] = m11 / N;
      // variance of a cluster's proportion: between services and site effects, plus binomial of m
      v0[s] = (m20 / N - p0[s] * p0[s]) + (p0[s] - m20 / N) / m;
      v1[s] = (m21 / N - p1[s] * p1[s]) + (p1[s] - m21 / N) / m;
      effect += p1[s] - p0[s];
    }
    const direction = effect < 0 ? -1 : 1, df = 2 * c - 2, crit = tquantile(1 - alpha / 2, df);
    let total = 0, inDirection = 0;
    for (let s = 0; s < S; s++) {
      const se = Math.sqrt((v0[s] + v1[s]) / c);
      // P(noncentral t(df, ncp) > crit), Abramowitz & Stegun 26.7.10's normal approximation
      const ncp = direction * (p1[s] - p0[s]) / se;
      total += se > 0 ? normalCdf((ncp - crit * (1 - 1 / (4 * df))) / Math.sqrt(1 + crit * crit / (2 * df)))
        : (direction * (p1[s] - p0[s]) > 0 ? 1 : 0);
      if (direction * (p1[s] - p0[s]) > 0) inDirection++;
    }
    return { value: total / S, direction: direction, pDirection: inDirection / S };
  }

  // ---------------------------------------------------------------- words and numbers on the page
  function fmtProb(x) {
    if (!Number.isFinite(x)) return "–";
    if (x < 0.005) return "< 0.01";
    if (x > 0.995) return "> 0.99";
    return x.toFixed(2);
  }
  function fmtGain(x) {
    const r = x.toFixed(3);
    return (x > 0 ? "+" : "") + (r === "-0.000" ? "0.000" : r);
  }
  function show(id, value, text) {
    const el = document.getElementById(id);
    el.dataset.value = String(value);
    el.textContent = text;
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k of Object.keys(attrs || {})) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function histogram(draws, stats) {
    const bins = 25, counts = new Array(bins).fill(0);
    for (let s = 0; s < S; s++) counts[Math.min(bins - 1, Math.floor(draws[s] * bins))]++;
    const w = 300, h = 80, top = Math.max(...counts), ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h + 14}`);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Histogram of ${S} posterior draws of the new service's chance; ` +
      `mean ${fmtProb(stats.mean)}, 90% of draws between ${fmtProb(stats.q05)} and ${fmtProb(stats.q95)}`);
    for (let b = 0; b < bins; b++) {
      const r = document.createElementNS(ns, "rect"), bh = top ? counts[b] / top * (h - 4) : 0;
      r.setAttribute("x", String(b * w / bins + 1)); r.setAttribute("width", String(w / bins - 2));
      r.setAttribute("y", String(h - bh)); r.setAttribute("height", String(bh));
      r.setAttribute("fill", "#7a9cc6"); r.setAttribute("stroke", "#1d2330"); r.setAttribute("stroke-width", "0.5");
      svg.appendChild(r);
    }
    const line = (x, dash) => {
      const l = document.createElementNS(ns, "line");
      l.setAttribute("x1", String(x * w)); l.setAttribute("x2", String(x * w));
      l.setAttribute("y1", "0"); l.setAttribute("y2", String(h));
      l.setAttribute("stroke", "#1d2330"); l.setAttribute("stroke-width", "1.5");
      if (dash) l.setAttribute("stroke-dasharray", "3 2");
      svg.appendChild(l);
    };
    line(stats.mean, false); line(stats.q05, true); line(stats.q95, true);
    for (const v of [0, 0.5, 1]) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", String(Math.min(w - 10, Math.max(0, v * w - 6)))); t.setAttribute("y", String(h + 12));
      t.textContent = String(v);
      svg.appendChild(t);
    }
    const box = document.getElementById("histogram");
    box.replaceChildren(svg, el("p", { class: "small muted" }, "Solid line: mean; dashed: the 90% interval."));
  }

  // ---------------------------------------------------------------- controls and the URL hash
  const controls = {};
  const defaults = { tl: NAMES[NAMES.length - 1], tp: 0.5, tq: 0.8, al: NAMES[NAMES.length - 1], ad: 1, c: 10, m: 20, n: 3 };
  function fmtNum(v) { return String(Math.round(v * 1000) / 1000); }
  function buildControls() {
    const box = document.getElementById("predictor-rows");
    NAMES.forEach((name, j) => {
      const row = el("div", { class: "row" });
      const id = "x-" + j;
      row.appendChild(el("label", { for: id + "-num", id: id + "-label" }, `${name} (${scale[j][0]}–${scale[j][1]})`));
      const range = el("input", { type: "range", id: id + "-range", min: scale[j][0], max: scale[j][1], step: "0.1",
        "aria-labelledby": id + "-label" });
      const num = el("input", { type: "number", id: id + "-num", min: scale[j][0], max: scale[j][1], step: "0.01" });
      range.addEventListener("input", () => { num.value = range.value; changed(); });
      num.addEventListener("change", () => { changed(); });
      row.appendChild(range); row.appendChild(num);
      box.appendChild(row);
      controls[name] = { range: range, num: num };
    });
    if (regions) {
      document.getElementById("region-row").hidden = false;
      const sel = document.getElementById("region");
      sel.appendChild(el("option", { value: "" }, "Not known: one of the fitted regions, in proportion to their services"));
      for (const r of regions.labels) sel.appendChild(el("option", { value: r }, r));
      sel.addEventListener("change", changed);
    }
    if (latent) {
      document.getElementById("n-row").hidden = false;
      document.getElementById("n").addEventListener("change", changed);
    }
    for (const id of ["tl", "al"]) {
      const sel = document.getElementById(id);
      for (const name of NAMES) sel.appendChild(el("option", { value: name }, name));
      sel.addEventListener("change", changed);
    }
    for (const id of ["tp", "tq", "ad", "c", "m"]) document.getElementById(id).addEventListener("change", changed);
    if (D.presets.length) {
      document.getElementById("preset-row").hidden = false;
      const sel = document.getElementById("preset");
      D.presets.forEach((p, i) => sel.appendChild(el("option", { value: String(i) }, p.site)));
      sel.addEventListener("change", () => {
        if (sel.value === "") return;
        const p = D.presets[Number(sel.value)], q = new URLSearchParams(currentParams());
        for (const name of NAMES) q.set(name, String(p[name]));
        if (regions) q.set("region", p.region || "");
        if (latent) q.set("n", String(p.n));
        apply(q.toString());
      });
    }
  }
  // read a number from the hash: clamp it to [lo, hi] and say so
  function readNumber(q, key, lo, hi, fallback, notes, what, whole) {
    if (!q.has(key) || q.get(key) === "") return fallback;
    let v = Number(q.get(key));
    if (!Number.isFinite(v)) { notes.push(`${what} = "${q.get(key)}" is not a number: set to ${fallback}.`); return fallback; }
    if (whole && v !== Math.round(v)) { notes.push(`${what} = ${v} is not a whole number: set to ${Math.round(v)}.`); v = Math.round(v); }
    if (v < lo || v > hi) {
      const c = clip(v, lo, hi);
      notes.push(`${what} = ${v} is off its scale ${lo}–${hi}: set to ${c}.`);
      return c;
    }
    return v;
  }
  function apply(hash) {
    const q = new URLSearchParams(hash.replace(/^#/, "")), notes = [];
    NAMES.forEach((name, j) => {
      const v = readNumber(q, name, scale[j][0], scale[j][1], center[j], notes, name, false);
      controls[name].num.value = fmtNum(v); controls[name].range.value = String(v);
    });
    if (regions) {
      let r = q.get("region") || "";
      if (r && !regions.labels.includes(r)) { notes.push(`Region "${r}" was not in the fitted data: taken as not known.`); r = ""; }
      document.getElementById("region").value = r;
    }
    if (!regions && q.get("region")) notes.push("This model has no region effects: the region is not used.");
    if (latent) document.getElementById("n").value = String(readNumber(q, "n", 1, 1000, defaults.n, notes, "respondents", true));
    for (const id of ["tl", "al"]) {
      let v = q.get(id) || defaults[id];
      if (!NAMES.includes(v)) { notes.push(`"${v}" is not a score of this model: ${defaults[id]} used.`); v = defaults[id]; }
      document.getElementById(id).value = v;
    }
    document.getElementById("tp").value = String(readNumber(q, "tp", 0.01, 0.99, defaults.tp, notes, "chance to reach", false));
    document.getElementById("tq").value = String(readNumber(q, "tq", 0.01, 0.99, defaults.tq, notes, "certainty", false));
    const al = NAMES.indexOf(document.getElementById("al").value), width = scale[al][1] - scale[al][0];
    let ad = readNumber(q, "ad", -width, width, defaults.ad, notes, "change", false);
    if (ad === 0) { notes.push("A change of 0 points is no intervention: set to 1."); ad = 1; }
    document.getElementById("ad").value = String(ad);
    document.getElementById("c").value = String(readNumber(q, "c", 2, 500, defaults.c, notes, "clusters per arm", true));
    document.getElementById("m").value = String(readNumber(q, "m", 1, 10000, defaults.m, notes, "people per cluster", true));
    const box = document.getElementById("notice");
    box.hidden = notes.length === 0;
    box.textContent = notes.join(" ");
    // the address holds the scenario as shown (clamped values included), so it can be sent on
    const normal = "#" + currentParams();
    if (normal !== location.hash) {
      writing = true;
      try { history.replaceState(null, "", normal); } catch (e) { location.hash = normal; }
      writing = false;
    }
    update();
  }
  function currentParams() {
    const q = new URLSearchParams();
    for (const name of NAMES) q.set(name, controls[name].num.value);
    if (regions) q.set("region", document.getElementById("region").value);
    if (latent) q.set("n", document.getElementById("n").value);
    for (const id of ["tl", "tp", "tq", "al", "ad", "c", "m"]) q.set(id, document.getElementById(id).value);
    return q.toString();
  }
  let writing = false;
  function changed() {
    // the controls' own limits can be typed past: read them back through the same clamping
    apply("#" + currentParams());
  }

  // ---------------------------------------------------------------- the results
  function scenario() {
    const x = NAMES.map((name) => Number(controls[name].num.value));
    let region = UNKNOWN;
    if (regions) {
      const r = document.getElementById("region").value;
      region = r === "" ? UNKNOWN : regions.labels.indexOf(r);
    }
    return { x: x, region: region, n: latent ? Number(document.getElementById("n").value) : 0 };
  }
  function update() {
    const sc = scenario();
    const nd = scenarioDraws(sc, "new"), td = scenarioDraws(sc, "typical");
    const pNew = pDraws(sc, nd, null), pTyp = pDraws(sc, td, null);
    const st = summary(pNew), typical = mean(pTyp);
    show("p-mean", st.mean, fmtProb(st.mean));
    show("p-q05", st.q05, fmtProb(st.q05));
    show("p-q95", st.q95, fmtProb(st.q95));
    show("p-typical", typical, fmtProb(typical));
    histogram(pNew, st);
    document.getElementById("typical-words").textContent =
      "Its own site effect set to 0 (the middle service with these scores" + (regions ? ", in this region" : "") +
      "): how good the scores are, apart from the luck of the service.";
    // gains: scenarios.levers with step 1, the same draws before and after
    const body = document.getElementById("gain-rows");
    body.replaceChildren();
    NAMES.forEach((name, j) => {
      const after = pDraws(sc, nd, { j: j, delta: 1 }), delta = new Float64Array(S);
      let positive = 0;
      for (let s = 0; s < S; s++) { delta[s] = after[s] - pNew[s]; if (delta[s] > 0) positive++; }
      const ds = summary(delta), tr = el("tr");
      tr.appendChild(el("th", { scope: "row" }, `${name} +1`));
      const cell = el("td", { "data-testid": "gain-" + name, "data-value": String(ds.mean), "data-p-positive": String(positive / S) },
        fmtGain(ds.mean));
      tr.appendChild(cell);
      tr.appendChild(el("td", {}, `${fmtGain(ds.q05)} to ${fmtGain(ds.q95)}`));
      tr.appendChild(el("td", { "data-testid": "gain-" + name + "-positive", "data-value": String(positive / S) }, fmtProb(positive / S)));
      body.appendChild(tr);
    });
    // target: scenarios.target for the new service
    const tl = NAMES.indexOf(document.getElementById("tl").value);
    const tp = Number(document.getElementById("tp").value), tq = Number(document.getElementById("tq").value);
    const found = targetOf(sc, nd, tl, tp, tq), lever = NAMES[tl], goal = `a chance of at least ${tp} with certainty ${tq}`;
    const what = latent ? `true ${lever}` : lever;
    let words;
    if (Number.isNaN(found.value)) {
      show("target-value", NaN, "not reachable on the scale");
      words = `No ${what} on the scale ${scale[tl][0]}–${scale[tl][1]} gives ${goal}; the highest certainty on the scale is ` +
        `${fmtProb(found.bestProb)} (from ${what} = ${found.bestValue.toFixed(2)}).`;
    } else {
      show("target-value", found.value, `${what} = ${found.value.toFixed(2)}`);
      words = latent
        ? `A true ${lever} of ${found.value.toFixed(2)} gives ${goal} (the measured ${lever} is ${sc.x[tl]}; true scores are uncertain).`
        : (found.value <= sc.x[tl] ? `Already met at ${lever} = ${sc.x[tl]}; the smallest ${lever} that gives ${goal} is ${found.value.toFixed(2)}.`
          : `Raise ${lever} from ${sc.x[tl]} to ${found.value.toFixed(2)} for ${goal}.`);
    }
    document.getElementById("target-words").textContent = words + " Other scores as set above; a new service.";
    // trial
    const al = NAMES.indexOf(document.getElementById("al").value), ad = Number(document.getElementById("ad").value);
    const c = Number(document.getElementById("c").value), m = Number(document.getElementById("m").value);
    const as = assurance(al, ad, c, m, 0.05);
    show("assurance", as.value, fmtProb(as.value));
    document.getElementById("trial-words").textContent =
      `Two arms of ${c} services each, ${m} people per service, the intervention moving ${NAMES[al]} by ${ad} point(s) ` +
      `(cut at the end of its scale) in every intervention service; success is a two-sided cluster-level t-test at ` +
      `alpha 0.05 significant in the intended direction (${as.direction > 0 ? "more" : "less"} embedding; ` +
      `P(effect in that direction) ${fmtProb(as.pDirection)}). Services are drawn from the ${pop.n_services} fitted ` +
      `services (their scores${regions ? " and regions" : ""}), each with its own site effect. Computed by an analytic ` +
      `approximation per posterior draw (the mean and variance of the arms' cluster proportions, then the noncentral t ` +
      `distribution of the test), which ` +
      `agreed with the package's simulation (mbct-bayes power assurance) within ${D.assurance_agreement} in the tests. ` +
      `The scenario above does not enter this number.`;
  }

  function describePage() {
    document.getElementById("title").textContent = "Planner: " + D.title;
    document.title = "Planner: " + D.title;
    document.getElementById("about").textContent = (D.description ? D.description + ". " : "") + D.outcome;
    const items = [
      `Computed in this page from ${S} posterior draws${S < D.draws_total ? ` (evenly spaced, of ${D.draws_total})` : ""}; ` +
        `the fit's diagnostics ${D.diagnostics_ok ? "passed" : "FAILED: treat every number with caution"}.`,
      "A new service has its own site effect, drawn from the fitted spread of services; that is why its interval is wide.",
      "The fitted associations of the scores with embedding are taken as what changing a score would do.",
      "Probabilities that round to 0 or 1 are shown as “< 0.01” and “> 0.99”.",
    ];
    if (regions) items.push("A region not known is one of the fitted regions, drawn in proportion to their numbers of services.");
    if (latent) items.push("The scores are measured: averages of the respondents given. The page works with the service's " +
      "true scores given these measurements (the fitted measurement model, the respondents' role mix of the fitted data); " +
      "levers and targets act on the true score.");
    if (D.categorical.length) items.push(`Categorical covariates (${D.categorical.join(", ")}) are at their reference level.`);
    const list = document.getElementById("assumption-list");
    for (const t of items) list.appendChild(el("li", {}, t));
    document.getElementById("footer").textContent =
      `mbct-bayes ${D.version}; new-site draws with seed ${D.seed}. This file needs no network.`;
  }

  describePage();
  buildControls();
  document.getElementById("link").addEventListener("click", (e) => {
    e.preventDefault();
    if (navigator.clipboard) navigator.clipboard.writeText(location.href).catch(() => {});
  });
  window.addEventListener("hashchange", () => { if (!writing) apply(location.hash); });
  apply(location.hash);
  document.body.dataset.ready = "1";
})();
