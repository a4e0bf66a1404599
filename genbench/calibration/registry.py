"""What the calibration study runs: its profiles (sizes), the scenario of each check, and the registry of checks.

A check is registered once, beside its trial function, by ``@calibration_check(...)`` (or
``register(Check(...))``); the study runner, the table and ``calibration.json`` take every check
from here, in registration order. ``genbench.calibration`` imports the Langevin and GAN check
modules, so the registry is complete whenever anything in the package is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from genbench._validate import choice
from genbench.errors import ParameterError
from genbench.testing._result import CheckResult

#: Detection rate every claim states (a priori, from the exact laws; never fitted to results).
CLAIM = 0.9


@dataclass(frozen=True)
class Profile:
    """Sizes of one study: seeds per (check, input), chains per Langevin check, images per GAN check.

    ``plan_false_alarms``: the correct input of every check gets the number of seeds planned (exact
    binomial) to flag a false-alarm rate of ``2 alpha`` with power 0.8 at the study's family level
    (``genbench.calibration.summary.planned_false_alarm_seeds``), or ``seeds`` if that is larger.
    """

    name: str
    seeds: int
    gan_seeds: int
    chains: int
    images: int
    claims_only: bool
    plan_false_alarms: bool = False
    ksd_samples: int = 500
    ksd_bootstrap: int = 199
    sbc_replications: int = 500
    sequential_n: int = 500
    c2st_epsilon: float = 0.1
    permutations: int = 199  # of the diversity test: p-values on a 1/200 grid are fine at alpha = 0.05
    alpha: float = 0.05
    data: str = "auto"  # where the real MNIST test split lies (see genbench.gan.data.load_mnist)
    skip: tuple[str, ...] = ()  # checks too slow for this profile (run them with --check NAME)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {f: list(v) if isinstance(v := getattr(self, f), tuple) else v for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        """Inverse of ``to_dict`` (fields a stored study lacks take their defaults)."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "skip" in known:
            known["skip"] = tuple(known["skip"])
        base = PROFILES.get(str(d.get("name")), PROFILES["quick"])
        return replace(base, **known)


PROFILES: dict[str, Profile] = {
    # Runs in the default test suite (<= 60 s on 2 cores): few seeds, and only the (check, mutant)
    # pairs with a stated claim, plus every check's correct input. Its rows are smoke checks.
    # C2ST trains a classifier per trial (seconds each on 2 cores): full profile or --check c2st only.
    "quick": Profile(name="quick", seeds=10, gan_seeds=3, chains=2000, images=500, claims_only=True,
                     skip=("c2st", "c2st_mlp")),
    # The calibration proper: 200 seeds per (check, mutant), every applicable mutant, and as many
    # seeds on each correct input as it takes to see a doubled false-alarm rate.
    "full": Profile(name="full", seeds=200, gan_seeds=200, chains=2000, images=500, claims_only=False,
                    plan_false_alarms=True),
}


def get_profile(name: str) -> Profile:
    """Look up a profile by name (quick or full)."""
    return PROFILES[choice("profile", name, tuple(PROFILES))]


@dataclass(frozen=True)
class Scenario:
    """The setting a check runs in, stated in the table and in calibration.json.

    ``x0`` is the fixed start point of every chain, or a sentence saying how starts are drawn;
    ``settings`` holds further stated sizes and sources, in display order.
    """

    steps: int | None = None
    step_size: float | None = None
    x0: tuple[float, ...] | str | None = None
    settings: tuple[tuple[str, Any], ...] = ()

    def with_settings(self, **more: Any) -> Scenario:
        """This scenario with further stated settings appended."""
        return replace(self, settings=(*self.settings, *more.items()))

    @property
    def start(self) -> np.ndarray:
        """The fixed start point as a float64 array."""
        if not isinstance(self.x0, tuple):
            raise ParameterError(f"scenario x0 must be a fixed start point here; got {self.x0!r}")
        return np.asarray(self.x0, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: the set fields, then the settings."""
        out: dict[str, Any] = {}
        for name in ("steps", "step_size", "x0"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        out.update(self.settings)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scenario:
        """Inverse of ``to_dict``."""
        x0 = d.get("x0")
        return cls(steps=d.get("steps"), step_size=d.get("step_size"),
                   x0=tuple(x0) if isinstance(x0, list) else x0,
                   settings=tuple((k, v) for k, v in d.items() if k not in ("steps", "step_size", "x0")))


TrialFn = Callable[[Scenario, Profile, "str | None", int], CheckResult]


@dataclass(frozen=True)
class Check:
    """One statistical check in one scenario, the mutants it is run against, and what it claims.

    ``trial(scenario, profile, mutant, seed)`` runs it once (mutant None: the correct input);
    ``claims`` maps a mutant to the detection rate the check is designed to reach against it
    (stated before measuring, from the theory in ``why``); other mutants are measured, with no promise.
    """

    name: str
    domain: str  # "langevin" or "gan"
    function: str  # the public genbench.testing function it calibrates
    null_hypothesis: str
    scenario: Scenario
    mutants: tuple[str, ...]
    trial: TrialFn
    claims: Mapping[str, float] = field(default_factory=dict)
    why: str = ""

    def run(self, profile: Profile, mutant: str | None, seed: int) -> CheckResult:
        """One trial of this check (mutant None: the correct input)."""
        return self.trial(self.scenario, profile, mutant, seed)


_REGISTRY: dict[str, Check] = {}


def register(check: Check) -> Check:
    """Add ``check`` to the study (names are unique; table order is registration order)."""
    if check.name in _REGISTRY:
        raise ParameterError(f"check {check.name!r} is registered twice")
    unknown = set(check.claims) - set(check.mutants)
    if unknown:
        raise ParameterError(f"check {check.name!r} claims mutants it does not run: {sorted(unknown)}")
    _REGISTRY[check.name] = check
    return check


def calibration_check(
    name: str,
    *,
    domain: str,
    function: str,
    null_hypothesis: str,
    scenario: Scenario,
    mutants: tuple[str, ...],
    claims: tuple[str, ...] = (),
    why: str = "",
) -> Callable[[TrialFn], TrialFn]:
    """Decorator registering its trial function as a check claiming detection rate ``CLAIM`` on ``claims``."""

    def decorate(trial: TrialFn) -> TrialFn:
        register(Check(name=name, domain=domain, function=function, null_hypothesis=null_hypothesis,
                       scenario=scenario, mutants=mutants, trial=trial, claims=dict.fromkeys(claims, CLAIM),
                       why=why))
        return trial

    return decorate


def checks() -> tuple[Check, ...]:
    """Every check of the study, in table order."""
    return tuple(_REGISTRY.values())


def get_check(name: str) -> Check:
    """Look up a check by name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"check must be one of {', '.join(_REGISTRY)}; got {name!r}") from None
