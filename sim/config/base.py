"""Building blocks of the scenario model: the strict base model and distributions."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

__all__ = [
    "Beta",
    "LocatedError",
    "Constant",
    "Distribution",
    "Exponential",
    "LogNormal",
    "NonNegativeFloats",
    "Normal",
    "QuietModel",
    "Uniform",
    "within",
]


class LocatedError(ValueError):
    """A cross-field problem that belongs to one place in the file; `loc` is its path below the validated model."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        """Keep where the problem is, for the line number of the message."""
        super().__init__(message)
        self.loc = loc


class StrictModel(BaseModel):
    """Unknown keys are errors; values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class QuietModel(StrictModel):
    """A strict model whose `QUIET` fields are left out of a dump while they hold their default.

    For features that are off unless a scenario asks for them: the resolved scenario a run
    writes (``scenario.yaml``) then reads as it did before the feature existed.
    """

    QUIET: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _leave_out_defaults(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            fields = type(self).model_fields
            for name in self.QUIET:
                if getattr(self, name) == fields[name].default:
                    data.pop(name, None)
        return data


# ---------------------------------------------------------------- distributions


class Constant(StrictModel):
    """Always the same value; a bare number in YAML means this."""

    dist: Literal["constant"] = Field(default="constant", description="selects this distribution")
    value: float = Field(description="the value")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` values."""
        return np.full(n, self.value)

    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return (self.value, self.value)


class Uniform(StrictModel):
    """Uniform on [low, high]."""

    dist: Literal["uniform"] = Field(description="selects this distribution")
    low: float = Field(description="smallest value")
    high: float = Field(description="largest value")

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high (={self.high}) must be >= low (={self.low})")
        return self

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` values."""
        return rng.uniform(self.low, self.high, n)

    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return (self.low, self.high)


class Normal(StrictModel):
    """Normal, truncated to [low, high] by resampling when bounds are given."""

    dist: Literal["normal"] = Field(description="selects this distribution")
    mean: float = Field(description="mean")
    std: float = Field(ge=0, description="standard deviation")
    low: float = Field(default=-np.inf, description="lower truncation bound")
    high: float = Field(default=np.inf, description="upper truncation bound")

    @model_validator(mode="after")
    def _ordered(self) -> Normal:
        if not self.low < self.mean < self.high:
            raise ValueError(f"mean (={self.mean}) must lie strictly between low and high")
        return self

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` values."""
        x = rng.normal(self.mean, self.std, n)
        for _ in range(100):  # the mean lies inside, so each round keeps a fair share
            bad = (x < self.low) | (x > self.high)
            if not bad.any():
                break
            x[bad] = rng.normal(self.mean, self.std, int(bad.sum()))
        return np.clip(x, self.low, self.high)

    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return (self.low, self.high)


class LogNormal(StrictModel):
    """Log-normal given by its median and the standard deviation of its logarithm."""

    dist: Literal["lognormal"] = Field(description="selects this distribution")
    median: float = Field(gt=0, description="median")
    sigma: float = Field(ge=0, description="standard deviation of the logarithm")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` values."""
        return rng.lognormal(np.log(self.median), self.sigma, n)

    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return (0.0, np.inf)


class Exponential(StrictModel):
    """Exponential with the given mean."""

    dist: Literal["exponential"] = Field(description="selects this distribution")
    mean: float = Field(gt=0, description="mean")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` values."""
        return rng.exponential(self.mean, n)

    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return (0.0, np.inf)


class Beta(StrictModel):
    """Beta(a, b) on [0, 1]: the usual shape for a state of charge."""

    dist: Literal["beta"] = Field(description="selects this distribution")
    a: float = Field(gt=0, description="first shape parameter")
    b: float = Field(gt=0, description="second shape parameter")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` values."""
        return rng.beta(self.a, self.b, n)

    def support(self) -> tuple[float, float]:
        """Smallest and largest value a draw can take."""
        return (0.0, 1.0)


def _number_is_constant(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


Distribution = Annotated[
    Constant | Uniform | Normal | LogNormal | Exponential | Beta,
    Field(discriminator="dist"),
    # the schema says what the YAML may hold: a bare number (a constant) or one of the distributions
    BeforeValidator(
        _number_is_constant, json_schema_input_type=float | Constant | Uniform | Normal | LogNormal | Exponential | Beta
    ),
]


def within(name: str, d: Any, lo: float, hi: float) -> None:
    """Raise ValueError unless every draw of distribution `d` lies in [lo, hi]."""
    s_lo, s_hi = d.support()
    if s_lo < lo or s_hi > hi:
        raise ValueError(f"{name} must take values in [{lo}, {hi}], but this distribution spans [{s_lo}, {s_hi}]")


def _non_negative(values: list[float]) -> list[float]:
    if min(values, default=0.0) < 0:
        raise ValueError("values must be >= 0")
    return values


NonNegativeFloats = Annotated[list[float], AfterValidator(_non_negative)]
"""A list of numbers none of which is negative (hourly rates, prices)."""
