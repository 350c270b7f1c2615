"""The statistics of an A/B experiment's report, as plain functions of counts (no database).

The unit is the served list: CTR is the share of lists with at least one click, the conversion rate the
share with at least one attributed conversion, revenue per list the mean of each list's attributed
revenue (zero for most). Each arm is compared with the control:

- rates: a two-proportion z-test (pooled standard error for the test, unpooled for the difference's
  95% confidence interval); each arm's rate with its 95% Wald interval;
- revenue per list: Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom) from each
  arm's sum and sum of squares;
- the minimum sample size per arm to detect a relative change of `mde` (e.g. 0.05 = 5%) from the
  control's value with a two-sided test at alpha 0.05 and 80% power;
- the verdict: "not enough data" until both arms reach that size, then "no difference" (p >= 0.05) or
  "B better/worse by x% (CI lo% to hi%)", the relative change against the control with the difference's
  interval divided by the control's value.

An arm that has served no list yet has no rate, no mean and no test (None, shown "–"), not 0: zero lists
say nothing, and a CTR of 0.0 in [0.0, 0.0] would read as measured.

A visitor sees many lists, so lists are not independent: the intervals are somewhat too narrow when a few
visitors see most lists. docs/experiments.md says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

ALPHA = 0.05
POWER = 0.8
Z_ALPHA = 1.959963984540054  # two-sided 95%
Z_POWER = 0.8416212335729143  # 80% power

NOT_ENOUGH = "not enough data"
NO_DIFFERENCE = "no difference"


@dataclass(frozen=True)
class Estimate:
    """None throughout: no list served, nothing to estimate."""

    value: float | None
    low: float | None
    high: float | None


NONE = Estimate(None, None, None)


@dataclass(frozen=True)
class Comparison:
    """An arm against the control on one metric; the values of a side with no list, and the difference and
    the test when either side has none, are None."""

    control: float | None
    arm: float | None
    diff: float | None
    diff_low: float | None
    diff_high: float | None
    statistic: float | None  # z (rates) or t (revenue)
    p_value: float | None
    required_n: int | None  # per arm, for the minimum detectable effect; None: cannot be computed
    n: int  # the smaller arm's lists

    @property
    def lift(self) -> float | None:
        return self.diff / self.control if self.control and self.diff is not None else None

    @property
    def lift_low(self) -> float | None:
        return self.diff_low / self.control if self.control and self.diff_low is not None else None

    @property
    def lift_high(self) -> float | None:
        return self.diff_high / self.control if self.control and self.diff_high is not None else None


def proportion(successes: int, n: int) -> Estimate:
    """A rate with its 95% Wald interval (clipped to [0, 1])."""
    if n <= 0:
        return NONE
    p = successes / n
    half = Z_ALPHA * math.sqrt(p * (1 - p) / n)
    return Estimate(p, max(0.0, p - half), min(1.0, p + half))


def mean(total: float, total_sq: float, n: int) -> Estimate:
    """A mean from its sum and sum of squares, with its 95% interval (t quantile)."""
    if n <= 0:
        return NONE
    m = total / n
    if n < 2:
        return Estimate(m, m, m)
    half = float(scipy_stats.t.ppf(1 - ALPHA / 2, n - 1)) * math.sqrt(variance(total, total_sq, n) / n)
    return Estimate(m, m - half, m + half)


def variance(total: float, total_sq: float, n: int) -> float:
    """The sample variance (n - 1) from a sum and a sum of squares."""
    if n < 2:
        return 0.0
    return max(0.0, (total_sq - total * total / n) / (n - 1))


def _two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def sample_size_proportions(base: float, mde: float) -> int | None:
    """Lists per arm to detect a change of `mde` (relative) from the rate `base` (Fleiss, no continuity
    correction). None when it cannot be computed (base 0, or a target rate outside (0, 1))."""
    target = base * (1 + mde)
    if base <= 0 or not 0 < target < 1 or mde == 0:
        return None
    mid = (base + target) / 2
    root = Z_ALPHA * math.sqrt(2 * mid * (1 - mid)) + Z_POWER * math.sqrt(
        base * (1 - base) + target * (1 - target)
    )
    return math.ceil(root * root / (target - base) ** 2)


def sample_size_means(base: float, sd: float, mde: float) -> int | None:
    """Lists per arm to detect a change of `mde` (relative) from the mean `base` with standard deviation
    `sd` (normal approximation). None when base or sd is 0."""
    delta = base * mde
    if delta == 0 or sd <= 0:
        return None
    return math.ceil(2 * (Z_ALPHA + Z_POWER) ** 2 * sd * sd / (delta * delta))


def _untested(control: float | None, arm: float | None, *, required_n: int | None, n: int) -> Comparison:
    """Either side has served no list: nothing to compare yet."""
    return Comparison(control, arm, None, None, None, None, None, required_n=required_n, n=n)


def compare_proportions(x_control: int, n_control: int, x_arm: int, n_arm: int, *, mde: float) -> Comparison:
    if not (n_control and n_arm):
        p_control = x_control / n_control if n_control else None
        return _untested(
            p_control,
            x_arm / n_arm if n_arm else None,
            required_n=sample_size_proportions(p_control, mde) if p_control is not None else None,
            n=0,
        )
    p1, p2 = x_control / n_control, x_arm / n_arm
    diff = p2 - p1
    pooled = (x_control + x_arm) / (n_control + n_arm)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_arm))
    se = math.sqrt(p1 * (1 - p1) / n_control + p2 * (1 - p2) / n_arm)
    z = diff / se_pooled if se_pooled else 0.0
    return Comparison(
        control=p1,
        arm=p2,
        diff=diff,
        diff_low=diff - Z_ALPHA * se,
        diff_high=diff + Z_ALPHA * se,
        statistic=z,
        p_value=_two_sided_p(z) if se_pooled else 1.0,
        required_n=sample_size_proportions(p1, mde),
        n=min(n_control, n_arm),
    )


def compare_means(
    control: tuple[float, float, int], arm: tuple[float, float, int], *, mde: float
) -> Comparison:
    """Welch's t-test; each side is (sum, sum of squares, n)."""
    (s1, q1, n1), (s2, q2, n2) = control, arm
    v1, v2 = variance(s1, q1, n1), variance(s2, q2, n2)
    if not (n1 and n2):
        m_control = s1 / n1 if n1 else None
        return _untested(
            m_control,
            s2 / n2 if n2 else None,
            required_n=sample_size_means(m_control, math.sqrt(v1), mde) if m_control is not None else None,
            n=0,
        )
    m1, m2 = s1 / n1, s2 / n2
    diff = m2 - m1
    a, b = v1 / n1, v2 / n2
    se = math.sqrt(a + b)
    if se > 0 and n1 > 1 and n2 > 1:
        df = (a + b) ** 2 / ((a * a / (n1 - 1) if a else 0.0) + (b * b / (n2 - 1) if b else 0.0))
        t = diff / se
        p = float(2 * scipy_stats.t.sf(abs(t), df))
        half = float(scipy_stats.t.ppf(1 - ALPHA / 2, df)) * se
    else:
        t, p, half = 0.0, 1.0, 0.0
    return Comparison(
        control=m1,
        arm=m2,
        diff=diff,
        diff_low=diff - half,
        diff_high=diff + half,
        statistic=t,
        p_value=p,
        required_n=sample_size_means(m1, math.sqrt(v1), mde),
        n=min(n1, n2),
    )


def verdict(comparison: Comparison, *, arm: str) -> str:
    """ "not enough data", "no difference", or "<arm> better/worse by x% (CI lo% to hi%)"."""
    c = comparison
    if c.required_n is None or c.n < c.required_n or c.lift is None:
        return NOT_ENOUGH
    if c.p_value is None or c.p_value >= ALPHA:
        return NO_DIFFERENCE
    assert c.diff is not None and c.lift_low is not None and c.lift_high is not None  # tested: both had lists
    direction = "better" if c.diff > 0 else "worse"
    return (
        f"{arm} {direction} by {abs(c.lift) * 100:.1f}% "
        f"(CI {c.lift_low * 100:+.1f}% to {c.lift_high * 100:+.1f}%)"
    )
