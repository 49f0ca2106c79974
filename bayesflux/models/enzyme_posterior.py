"""Fluxes and turnover numbers together: an enzyme posterior with proteomics (issue 21).

GECKO / sMOMENT (:mod:`bayesflux.methods.ecmodel`) fix each turnover number ``kcat`` at a table
value. Here the ``kcat`` are latent and the measured enzyme amounts observe them, so the flux
posterior carries the ``kcat`` uncertainty::

    v ~ Uniform(P)                                   P = {S v = 0, lb <= v <= ub, directions}
    ln kcat_r ~ N(ln kcat̂_r, σ_k²)                   σ_k = ln(10) / 2: a factor 10 ≈ 2 sd
    E_g = Σ_{r : g ∈ C_r} |v_r| / (3600 kcat_r)      mmol/gDW, v in mmol/gDW/h, kcat in 1/s
    ln Ê_g ~ N(ln(E_g + ε), sd_g²)                   proteomics, one observation per gene
    y_j ~ N(v_j, s_j²)                               optional measured fluxes
    Σ_g MW_g E_g / 1000 <= P_tot                     optional, soft: log Φ((P_tot - M) / s_P)

``C_r`` is the complex (the genes AND-ed in one term of the GPR in disjunctive normal form)
that catalyses ``r``: its only one, or for isozymes the cheapest, ``Σ_{g ∈ C} MW_g /
kcat̂_{r,C}`` (sMOMENT's choice, Bekiaris & Klamt 2020), among those whose subunits are all
measured if there are such. Each subunit of a complex is used at the complex's rate; enzymes
work saturated (``v = kcat E``, GECKO's equality at the optimum, Sánchez et al. 2017), so one
``kcat`` per catalysed reaction is the latent (modest in number: 64 on E. coli core). The
table and its defaults are :func:`~bayesflux.methods.ecmodel.ec_model` 's. Measured genes in
no chosen complex are ignored (``ignored_genes``); a gene measured as present whose reactions
are all held at 0 by the polytope conflicts with saturation (its ``E_g`` is 0) and only adds
a constant.

Only ``|v_r|`` enters, so proteomics cannot tell a direction: a reaction free to change sign
has a mode per sign, separated by ``E_g -> ε`` at ``v_r = 0``, which no gradient-based kernel
crosses. ``directions`` (from thermodynamics, 13C or an FBA solution) restricts reversible
reactions to one sign; then ``|v_r|`` is linear on ``P`` and the posterior smooth, and
:class:`~bayesflux.infer.ReflectiveHMC` moves ``v`` exactly on ``P`` (reflection) and
``u_r = ln kcat_r - ln|v_r|`` freely (:meth:`EnzymePosterior.model`: coordinates without the
funnel of ``(v, ln kcat)``). :func:`simulate_enzyme_data` draws a true state from the prior and
proteomics from the likelihood (simulation-based checks: 94 % HDIs should cover the truth about
94 % of the time).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import xarray as xr

from bayesflux.errors import ConfigError, NetworkError
from bayesflux.methods.ecmodel import SECONDS_PER_HOUR, EnzymeLookup, check_enzyme_table, isozymes
from bayesflux.models import blocks
from bayesflux.network import Network, as_network
from bayesflux.results import provenance
from bayesflux.sampling.polytope import Polytope, polytope

__all__ = [
    "KCAT_SD",
    "EnzymePosterior",
    "SimulatedEnzymeData",
    "enzyme_posterior",
    "simulate_enzyme_data",
]

KCAT_SD = float(np.log(10.0) / 2.0)
"""Default sd of ``ln kcat`` around the table: a factor 10 is about two standard deviations
(in vitro kcats and in vivo turnover often differ by up to that, Davidi et al. 2016, PNAS
113:3401)."""

_EPS = 1e-12  # mmol/gDW added to E_g inside the log: a finite likelihood at E_g = 0


@dataclass(frozen=True, eq=False)
class _Enzymes:
    """The catalysis structure: one complex per enzyme-catalysed reaction, its table kcat, and
    the membership of genes in complexes (``members[r, g] = 1`` if gene ``g`` is in ``C_r``)."""

    network: Network
    polytope: Polytope
    reactions: tuple[str, ...]
    complexes: tuple[tuple[str, ...], ...]
    genes: tuple[str, ...]
    kcat: np.ndarray
    mw: np.ndarray
    members: np.ndarray
    index: np.ndarray  # positions of ``reactions`` in the network

    def demand(self, v: jax.Array, kcat: jax.Array) -> jax.Array:
        """``E_g = Σ_{r: g ∈ C_r} |v_r| / (3600 kcat_r)`` (mmol/gDW), one per gene."""
        rate = jnp.abs(v[..., self.index]) / (SECONDS_PER_HOUR * kcat)
        return rate @ self.members


def _directed(network: Network, directions: Mapping[str, float] | None) -> Network:
    """The network with each reaction of ``directions`` held to its sign's side of 0."""
    if not directions:
        return network
    bounds = {}
    for r, s in directions.items():
        if r not in network.reaction_index:
            raise NetworkError(f"directions names reaction {r!r}, not in network {network.id!r}")
        if not (np.isfinite(s) and s != 0):
            raise ConfigError(f"direction of reaction {r!r} must be a nonzero number, got {s!r}")
        j = network.reaction_index[r]
        lo, hi = float(network.lb[j]), float(network.ub[j])
        bounds[r] = (max(lo, 0.0), hi) if s > 0 else (lo, min(hi, 0.0))
        if (hi <= 0.0) if s > 0 else (lo >= 0.0):
            raise ConfigError(
                f"direction {s:+g} of reaction {r!r} contradicts its bounds [{lo:g}, {hi:g}]"
            )
    return network.with_bounds(bounds)


def _structure(
    network,
    *,
    table,
    measured_genes: Sequence[str],
    reactions: Sequence[str] | None,
    directions: Mapping[str, float] | None,
    default_kcat: float,
    default_mw: float,
    spontaneous: Sequence[str],
) -> _Enzymes:
    net = as_network(network)
    if table is None:
        checked = check_enzyme_table(
            pd.DataFrame({c: pd.Series(dtype=object) for c in ("reaction", "gene", "kcat", "mw")}),
            "enzyme table",
        )
    elif isinstance(table, pd.DataFrame):
        checked = check_enzyme_table(table, "enzyme table")
    else:
        from bayesflux.methods.ecmodel import read_enzyme_table

        checked = read_enzyme_table(table)
    for name, value in (("default_kcat", default_kcat), ("default_mw", default_mw)):
        if not (np.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")
    look = EnzymeLookup(checked, float(default_kcat), float(default_mw))
    if reactions is None:
        chosen = [r for r, rule in zip(net.reactions, net.gpr) if rule.strip()]
    else:
        chosen = list(dict.fromkeys(reactions))
        unknown = [r for r in chosen if r not in net.reaction_index]
        if unknown:
            raise NetworkError(f"reaction(s) {unknown[:8]} are not in network {net.id!r}")
    measured = set(measured_genes)
    rows, complexes, kcats = [], [], []
    for r in chosen:
        options = isozymes(net.gpr[net.reaction_index[r]], reaction=r, spontaneous=spontaneous)
        if options is None:
            if reactions is not None:
                raise NetworkError(
                    f"reaction {r!r} has no GPR (or a spontaneous one): no enzyme, no kcat"
                )
            continue
        costs = [sum(look.weight(g) for g in c) / look.kcat(r, c) for c in options]
        best = min(
            range(len(options)),
            key=lambda i: (not all(g in measured for g in options[i]), costs[i], i),
        )
        rows.append(r)
        complexes.append(options[best])
        kcats.append(look.kcat(r, options[best]))
    if not rows:
        raise NetworkError(f"network {net.id!r} has no reaction with a GPR: no enzyme to model")
    genes = tuple(dict.fromkeys(g for c in complexes for g in c))
    col = {g: i for i, g in enumerate(genes)}
    members = np.zeros((len(rows), len(genes)))
    for i, c in enumerate(complexes):
        members[i, [col[g] for g in c]] = 1.0
    directed = _directed(net, directions)
    poly = polytope(directed)
    return _Enzymes(
        network=directed,
        polytope=poly,
        reactions=tuple(rows),
        complexes=tuple(complexes),
        genes=genes,
        kcat=np.array(kcats),
        mw=np.array([look.weight(g) for g in genes]),
        members=members,
        index=np.array([poly.reactions.index(r) for r in rows]),
    )


def _check_kcat_sd(kcat_sd: float) -> float:
    if not (np.isfinite(kcat_sd) and kcat_sd > 0):
        raise ConfigError(f"kcat_sd must be a positive number (sd of ln kcat), got {kcat_sd!r}")
    return float(kcat_sd)


def _proteomics(
    proteomics: Mapping[str, float | tuple[float, float]], network: Network, sd: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(genes, abundances, sd of ln)`` of ``{gene: abundance}`` or ``{gene: (abundance, sd)}``,
    checked: known genes, positive finite abundances and sds."""
    if not proteomics:
        raise ConfigError("proteomics is empty: give {gene: abundance (mmol/gDW)}")
    known = set(network.genes)
    genes, values, sds = [], [], []
    for g, item in proteomics.items():
        if g not in known:
            raise ConfigError(f"proteomics names gene {g!r}, not in network {network.id!r}")
        try:
            value, s = item if isinstance(item, tuple | list) else (item, sd)
            value, s = float(value), float(s)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"proteomics of gene {g!r} must be an abundance or (abundance, sd), got {item!r}"
            ) from exc
        if not (np.isfinite(value) and value > 0):
            raise ConfigError(
                f"proteomics of gene {g!r} must be a positive abundance (mmol/gDW), got {value!r}"
            )
        if not (np.isfinite(s) and s > 0):
            raise ConfigError(f"proteomics sd of gene {g!r} must be > 0 (sd of ln), got {s!r}")
        genes.append(g)
        values.append(value)
        sds.append(s)
    return genes, np.array(values), np.array(sds)


class EnzymePosterior:
    """The joint posterior of fluxes and turnover numbers given proteomics (module docstring).

    Built by :func:`enzyme_posterior`. Attributes: ``network`` (with ``directions`` applied),
    ``polytope``, ``reactions`` (those with a latent kcat), ``complexes`` (the complex of each),
    ``genes`` (all subunits, the ``gene`` coordinate of ``enzyme``), ``kcat_table`` (1/s),
    ``kcat_sd``, ``mw`` (g/mol per gene), ``measured_genes``, ``abundance``, ``abundance_sd``,
    ``ignored_genes`` (measured genes outside every chosen complex: isozymes not modelled),
    ``sign_free`` (modelled reactions that may run either way), ``pinned`` (reactions sampled
    through ``ln kcat_r - ln|v_r|``, :meth:`model`).
    """

    def __init__(
        self,
        enzymes: _Enzymes,
        genes: list[str],
        abundance: np.ndarray,
        abundance_sd: np.ndarray,
        *,
        kcat_sd: float,
        measured: Mapping[str, tuple[float, float]] | None,
        protein_budget: float | None,
        budget_sd: float | None,
        parametrization: str = "auto",
    ) -> None:
        if parametrization not in ("auto", "kcat"):
            raise ConfigError(f"parametrization must be 'auto' or 'kcat', got {parametrization!r}")
        self._enzymes = enzymes
        self.network = enzymes.network
        self.polytope = enzymes.polytope
        self.reactions = enzymes.reactions
        self.complexes = enzymes.complexes
        self.genes = enzymes.genes
        self.kcat_table = enzymes.kcat
        self.kcat_sd = kcat_sd
        self.mw = enzymes.mw
        used = [i for i, g in enumerate(genes) if g in enzymes.genes]
        self.ignored_genes = tuple(g for g in genes if g not in enzymes.genes)
        if not used:
            raise ConfigError(
                f"no measured gene is a subunit of a modelled complex (ignored: "
                f"{list(self.ignored_genes)[:8]})"
            )
        self.measured_genes = tuple(genes[i] for i in used)
        self.abundance = abundance[used]
        self.abundance_sd = abundance_sd[used]
        self._gene_index = np.array([enzymes.genes.index(g) for g in self.measured_genes])
        self.measured = dict(measured or {})
        if self.measured:
            _check_measured(self.measured, self.polytope)
        if protein_budget is not None:
            if not (np.isfinite(protein_budget) and protein_budget > 0):
                raise ConfigError(f"protein_budget must be > 0 (g/gDW), got {protein_budget!r}")
            budget_sd = 0.05 * protein_budget if budget_sd is None else budget_sd
            if not (np.isfinite(budget_sd) and budget_sd > 0):
                raise ConfigError(f"budget_sd must be > 0 (g/gDW), got {budget_sd!r}")
        self.protein_budget = protein_budget
        self.budget_sd = budget_sd
        lo, hi = self.polytope.flux_min[enzymes.index], self.polytope.flux_max[enzymes.index]
        scale = np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
        self.sign_free = tuple(
            r for r, a, b, s in zip(self.reactions, lo, hi, scale) if a < -1e-9 * s and b > 1e-9 * s
        )
        # u_r = ln kcat_r - ln|v_r| for reactions that can carry flux and own a measured gene
        # alone (its amount pins u_r); ln kcat_r itself elsewhere (model())
        moving = np.maximum(np.abs(lo), np.abs(hi)) > 1e-9  # else held at v_r = 0
        used = enzymes.members * moving[:, None]
        solo = np.zeros(len(self.genes), bool)
        solo[self._gene_index] = used[:, self._gene_index].sum(axis=0) == 1
        self._pinned = moving & (used[:, solo].sum(axis=1) > 0) & (parametrization == "auto")
        self.pinned = tuple(r for r, p in zip(self.reactions, self._pinned) if p)
        self._set_starts(used, solo)

    def _set_starts(self, used: np.ndarray, solo: np.ndarray) -> None:
        """Where the data put ``u_r``: ``-ln(3600 Ê_g)`` over its solo genes (their sds as its
        spread); the prior's ``ln kcat̂_r - ln|v_r|`` at the polytope's centre without one."""
        log_obs, obs_sd = np.zeros(len(self.genes)), np.ones(len(self.genes))
        log_obs[self._gene_index] = np.log(self.abundance)
        obs_sd[self._gene_index] = self.abundance_sd
        pick = used[self._pinned] * solo
        count = pick.sum(axis=1)
        poly = self.polytope
        centre = np.abs(poly.v0 + poly.N @ poly.center)[self._enzymes.index[self._pinned]]
        prior = np.log(self.kcat_table[self._pinned]) - np.log(np.maximum(centre, 1e-300))
        data = -(pick @ log_obs) / np.maximum(count, 1) - np.log(SECONDS_PER_HOUR)
        self._u_start = np.where(count > 0, data, prior)
        self._u_spread = np.where(count > 0, (pick @ obs_sd) / np.maximum(count, 1), self.kcat_sd)

    def demand(self, v: jax.Array, kcat: jax.Array) -> jax.Array:
        """Enzyme amounts ``E_g`` (mmol/gDW) of fluxes ``v`` and turnover numbers ``kcat``."""
        return self._enzymes.demand(v, kcat)

    def model(self):
        """This posterior as a NumPyro model: sites ``flux`` (polytope), hidden
        ``_log_kcat_over_flux`` (``u_r``) and ``_log_kcat``, deterministic ``log_kcat``,
        ``kcat`` (over ``kcat_reaction``) and ``enzyme`` (over ``gene``), observed
        ``proteomics`` (plate ``measured_gene``), ``measured_fluxes`` where given, and a
        ``protein_budget`` factor where given.

        For the reactions in ``pinned`` (those that can carry flux and are the only modelled
        user of some measured gene) the sampler's coordinates are ``(v, u)`` with
        ``u_r = ln kcat_r - ln|v_r|`` (a shear, Jacobian 1; ``u_r | v ~ N(ln kcat̂_r - ln|v_r|,
        σ_k²)`` is ``ln kcat_r``'s prior, a factor ``_kcat_prior`` over the base measure of
        ``u``'s site, which is centred on the data's value so that chains start there), so
        that their part of ``E_g``, ``exp(-u_r) / 3600``, depends on ``u`` alone. In
        ``(v, ln kcat)`` such a gene fixes ``ln|v_r| - ln kcat_r``:
        a curved ridge that narrows as ``v_r -> 0`` (a funnel, where reflective HMC diverged and
        chains disagreed); in ``(v, u)`` the data fix ``u`` and ``v`` keeps a smooth
        log-normal-shaped density. Where the data fix no such ratio (shared or unmeasured
        genes, reactions held at ``v_r = 0``) the prior dominates, ``(v, u)`` would carry its
        ridge instead, and ``ln kcat_r`` itself is sampled (``_log_kcat``): the centred /
        non-centred choice of hierarchical models (Betancourt & Girolami 2015), per reaction.
        """
        poly, enz = self.polytope, self._enzymes
        mu, sd = np.log(self.kcat_table), self.kcat_sd
        n, genes = len(self.reactions), list(self.measured_genes)
        obs, obs_sd, at = np.log(self.abundance), self.abundance_sd, self._gene_index
        measured, budget, budget_sd = self.measured, self.protein_budget, self.budget_sd
        mw, members = self.mw, enz.members
        pinned, free = np.flatnonzero(self._pinned), np.flatnonzero(~self._pinned)
        flux_at, free_at = enz.index[pinned], enz.index[free]
        u_start, u_spread = self._u_start, self._u_spread

        def enzyme_model() -> None:
            v = blocks.flux_polytope("flux", poly)
            log_kcat = jnp.zeros(jnp.shape(v)[:-1] + (n,))
            rate = jnp.zeros(jnp.shape(v)[:-1] + (n,))  # |v_r| / (3600 kcat_r)
            if pinned.size:
                # u's site: a base N(u_data, s) (chains start near it), exchanged in the factor
                # for u's prior given v, N(u + ln|v_r|; ln kcat̂_r, σ_k²)
                base = dist.Normal(u_start, u_spread)
                with numpyro.plate("_pinned_reaction", pinned.size):
                    u = numpyro.sample("_log_kcat_over_flux", base)
                log_pinned = u + jnp.log(jnp.abs(v[..., flux_at]))
                prior = dist.Normal(mu[pinned], sd).log_prob(log_pinned) - base.log_prob(u)
                numpyro.factor("_kcat_prior", jnp.sum(prior, axis=-1))
                log_kcat = log_kcat.at[..., pinned].set(log_pinned)
                rate = rate.at[..., pinned].set(jnp.exp(-u) / SECONDS_PER_HOUR)
            if free.size:
                with numpyro.plate("_free_reaction", free.size):
                    w = numpyro.sample("_log_kcat", dist.Normal(mu[free], sd))
                log_kcat = log_kcat.at[..., free].set(w)
                rate = rate.at[..., free].set(
                    jnp.abs(v[..., free_at]) * jnp.exp(-w) / SECONDS_PER_HOUR
                )
            log_kcat = numpyro.deterministic("log_kcat", log_kcat)
            numpyro.deterministic("kcat", jnp.exp(log_kcat))
            amount = numpyro.deterministic("enzyme", rate @ members)
            with numpyro.plate("measured_gene", len(genes)):
                numpyro.sample(
                    "proteomics",
                    dist.Normal(jnp.log(amount[..., at] + _EPS), obs_sd),
                    obs=obs,
                    infer={"coords": {"measured_gene": genes}},
                )
            if measured:
                blocks.measured_fluxes(v, measured, network=poly)
            if budget is not None:
                mass = amount @ mw / 1000.0
                numpyro.factor(
                    "protein_budget", jax.scipy.stats.norm.logcdf((budget - mass) / budget_sd)
                )

        return enzyme_model

    def tree_options(self) -> dict:
        """``coords``, ``dims`` and provenance ``attrs`` of this posterior's DataTrees."""
        attrs = provenance(
            "enzyme posterior (ReflectiveHMC)",
            self.network,
            kcat_sd=self.kcat_sd,
            measured_genes=len(self.measured_genes),
            ignored_genes=",".join(self.ignored_genes) or "none",
            measured_fluxes=",".join(self.measured) or "none",
            protein_budget=np.nan if self.protein_budget is None else self.protein_budget,
        )
        return {
            "coords": {
                "reaction": list(self.polytope.reactions),
                "kcat_reaction": list(self.reactions),
                "gene": list(self.genes),
            },
            "dims": {"log_kcat": ["kcat_reaction"], "kcat": ["kcat_reaction"], "enzyme": ["gene"]},
            "attrs": attrs,
        }

    def sample(
        self,
        *,
        num_draws: int = 1000,
        num_warmup: int | None = None,
        num_chains: int = 4,
        seed: int = 0,
        trajectory_length: float = 3.0,
        target_accept_prob: float = 0.8,
        max_steps: int = 256,
        progress: bool = False,
        checkpoint=None,
        chain_method: str | None = None,
    ) -> xr.DataTree:
        """Posterior draws by :class:`~bayesflux.infer.ReflectiveHMC` through
        :func:`bayesflux.infer.sample`: an ArviZ DataTree with ``posterior`` (``flux`` over
        ``reaction``, ``log_kcat`` and ``kcat`` over ``kcat_reaction``, ``enzyme`` over
        ``gene``), ``sample_stats``, pointwise ``log_likelihood`` (``proteomics``, measured
        fluxes), ``observed_data``, ``constant_data``; attrs ``max_rhat``, ``min_ess_bulk``,
        ``min_ess_tail`` (stored by :func:`~bayesflux.infer.sample`)."""
        from bayesflux.infer import ReflectiveHMC
        from bayesflux.infer import sample as infer_sample

        if self.sign_free:
            warnings.warn(
                f"reaction(s) {list(self.sign_free)[:8]} may run either way: proteomics sees "
                "|v| only, so the posterior has a mode per sign that chains do not cross; "
                "give their directions",
                stacklevel=2,
            )
        model = self.model()
        kernel = ReflectiveHMC(
            model,
            trajectory_length=trajectory_length,
            target_accept_prob=target_accept_prob,
            max_steps=max_steps,
        )
        return infer_sample(
            model,
            kernel=kernel,
            num_draws=num_draws,
            num_warmup=num_warmup,
            num_chains=num_chains,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            chain_method=chain_method,
            **self.tree_options(),
        )


def _check_measured(measured: Mapping[str, tuple[float, float]], poly: Polytope) -> None:
    missing = [r for r in measured if r not in poly.reactions]
    if missing:
        raise ConfigError(f"measured flux(es) of {missing[:8]}: reaction(s) not in the model")
    for r, item in measured.items():
        try:
            y, s = (float(x) for x in item)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"measured flux of {r!r} must be (value, sd), got {item!r}") from exc
        if not (np.isfinite(y) and np.isfinite(s) and s > 0):
            raise ConfigError(f"measured flux of {r!r} needs a finite value and 0 < sd < inf")


def enzyme_posterior(
    network,
    proteomics: Mapping[str, float | tuple[float, float]],
    *,
    table: pd.DataFrame | str | None = None,
    measured: Mapping[str, tuple[float, float]] | None = None,
    directions: Mapping[str, float] | None = None,
    reactions: Sequence[str] | None = None,
    kcat_sd: float = KCAT_SD,
    proteomics_sd: float = 0.2,
    protein_budget: float | None = None,
    budget_sd: float | None = None,
    default_kcat: float = 65.0,
    default_mw: float = 40_000.0,
    spontaneous: Sequence[str] = ("s0001",),
    parametrization: str = "auto",
) -> EnzymePosterior:
    """The posterior of fluxes and turnover numbers given measured enzyme amounts.

    Parameters
    ----------
    network
        A :class:`~bayesflux.Network` (or cobra model, file, dataset name) with GPR rules.
    proteomics
        ``{gene: abundance}`` (mmol/gDW) or ``{gene: (abundance, sd of ln abundance)}``.
        Genes outside every chosen complex (isozymes not modelled) are ignored
        (``ignored_genes``).
    table
        Enzyme table (:func:`~bayesflux.methods.ecmodel.read_enzyme_table` columns
        ``reaction, gene, kcat, mw``; e.g.
        :func:`~bayesflux.methods.ecmodel.ecoli_core_enzyme_table`): the prior medians of the
        ``kcat`` and the MWs; missing entries take ``default_kcat`` (1/s) and ``default_mw``
        (g/mol).
    measured
        ``{reaction: (flux, sd)}``: measured fluxes, ``y ~ N(v, sd²)``.
    directions
        ``{reaction: +1 or -1}``: the sign each reaction keeps (module docstring).
    reactions
        The reactions given a latent kcat (default: every one with a non-spontaneous GPR); a
        reaction without a GPR is a :class:`~bayesflux.errors.NetworkError`.
    kcat_sd
        Sd of ``ln kcat`` around the table (default ``ln(10) / 2``).
    proteomics_sd
        Sd of ``ln Ê_g`` where ``proteomics`` gives none.
    protein_budget, budget_sd
        Total enzyme mass ``P_tot`` (g/gDW) as a soft upper bound of ``Σ MW_g E_g / 1000``,
        softness ``budget_sd`` (default 5 % of it); ``None``: no budget.
    parametrization
        The sampler's coordinates (the posterior is the same): ``"auto"`` samples
        ``ln kcat_r - ln|v_r|`` for the ``pinned`` reactions and ``ln kcat_r`` for the others
        (:meth:`EnzymePosterior.model`), ``"kcat"`` samples ``ln kcat_r`` for all.

    Raises
    ------
    ConfigError
        A proteomics gene not in the network, a non-positive abundance or sd, a bad measured
        flux or setting.
    NetworkError
        A reaction in ``reactions`` without a GPR or unknown, a bad enzyme table.
    """
    net = as_network(network)
    kcat_sd = _check_kcat_sd(kcat_sd)
    if not (np.isfinite(proteomics_sd) and proteomics_sd > 0):
        raise ConfigError(f"proteomics_sd must be > 0 (sd of ln), got {proteomics_sd!r}")
    genes, values, sds = _proteomics(proteomics, net, proteomics_sd)
    enzymes = _structure(
        net,
        table=table,
        measured_genes=genes,
        reactions=reactions,
        directions=directions,
        default_kcat=default_kcat,
        default_mw=default_mw,
        spontaneous=spontaneous,
    )
    return EnzymePosterior(
        enzymes,
        genes,
        values,
        sds,
        kcat_sd=kcat_sd,
        measured=measured,
        protein_budget=protein_budget,
        budget_sd=budget_sd,
        parametrization=parametrization,
    )


class SimulatedEnzymeData(NamedTuple):
    """A simulated experiment: the ``truth`` (``flux`` over ``reaction``, ``kcat`` over
    ``kcat_reaction``, ``enzyme`` over ``gene``), ``proteomics`` ``{gene: (abundance, sd)}`` and
    ``measured`` ``{reaction: (flux, sd)}``, ready for :func:`enzyme_posterior`."""

    truth: xr.Dataset
    proteomics: dict[str, tuple[float, float]]
    measured: dict[str, tuple[float, float]]


def simulate_enzyme_data(
    network,
    *,
    table: pd.DataFrame | str | None = None,
    directions: Mapping[str, float] | None = None,
    reactions: Sequence[str] | None = None,
    kcat_sd: float = KCAT_SD,
    proteomics_sd: float = 0.2,
    measured_sd: Mapping[str, float] | None = None,
    seed: int = 0,
    mixing_steps: int | None = None,
    default_kcat: float = 65.0,
    default_mw: float = 40_000.0,
    spontaneous: Sequence[str] = ("s0001",),
) -> SimulatedEnzymeData:
    """Draw a true state from :func:`enzyme_posterior` 's prior and data from its likelihood.

    ``ln kcat_r ~ N(ln kcat̂_r, kcat_sd²)``; ``v`` uniform on the (directed) flux polytope, by a
    random-direction hit-and-run walk of ``mixing_steps`` (default ``500 d + 1000``) exact
    chords from the Chebyshev centre; every subunit of a chosen complex with ``E_g > 0``
    measured (an enzyme of reactions held at 0 has no saturated amount),
    ``ln Ê_g ~ N(ln E_g, proteomics_sd²)``; measured fluxes ``y_j ~ N(v_j, s_j²)`` for
    ``measured_sd = {reaction: s_j}``. The same arguments to :func:`enzyme_posterior` give the
    model that generated the data.
    """
    net = as_network(network)
    kcat_sd = _check_kcat_sd(kcat_sd)
    if not (np.isfinite(proteomics_sd) and proteomics_sd > 0):
        raise ConfigError(f"proteomics_sd must be > 0 (sd of ln), got {proteomics_sd!r}")
    enz = _structure(
        net,
        table=table,
        measured_genes=(),
        reactions=reactions,
        directions=directions,
        default_kcat=default_kcat,
        default_mw=default_mw,
        spontaneous=spontaneous,
    )
    poly = enz.polytope
    k_v, k_walk = jax.random.split(jax.random.key(int(seed)))
    steps = int(mixing_steps or 500 * poly.dim + 1000)
    z = blocks.hit_and_run_walks(
        k_walk[None], jnp.asarray(poly.A), jnp.asarray(poly.b), jnp.asarray(poly.center), steps
    )[0]
    v = poly.v0 + np.asarray(z) @ poly.N.T
    rng = np.random.default_rng(int(np.asarray(jax.random.randint(k_v, (), 0, 2**31 - 1))))
    kcat = np.exp(np.log(enz.kcat) + kcat_sd * rng.standard_normal(enz.kcat.size))
    amount = np.asarray(enz.demand(jnp.asarray(v), jnp.asarray(kcat)))
    observed = np.exp(np.log(amount + _EPS) + proteomics_sd * rng.standard_normal(amount.size))
    proteomics = {
        g: (float(x), float(proteomics_sd))
        for g, x, e in zip(enz.genes, observed, amount)
        if e > 1e-9 * amount.max()
    }
    measured = {}
    for r, s in (measured_sd or {}).items():
        if r not in poly.reactions:
            raise ConfigError(f"measured_sd names reaction {r!r}, not in the model")
        if not (np.isfinite(s) and s > 0):
            raise ConfigError(f"measured sd of reaction {r!r} must be > 0, got {s!r}")
        j = poly.reactions.index(r)
        measured[r] = (float(v[j] + s * rng.standard_normal()), float(s))
    truth = xr.Dataset(
        {
            "flux": ("reaction", v),
            "kcat": ("kcat_reaction", kcat),
            "log_kcat": ("kcat_reaction", np.log(kcat)),
            "enzyme": ("gene", amount),
        },
        coords={
            "reaction": list(poly.reactions),
            "kcat_reaction": list(enz.reactions),
            "gene": list(enz.genes),
        },
        attrs={"seed": int(seed), "mixing_steps": steps, "network": net.id},
    )
    return SimulatedEnzymeData(truth, proteomics, measured)
