"""The experiment report's statistics against a case computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from analytics import experiment_stats as st


def test_rate_and_its_95_percent_interval():
    # p = 100/1000 = 0.1; half-width 1.96 * sqrt(0.1 * 0.9 / 1000) = 1.96 * 0.0094868 = 0.018594
    estimate = st.proportion(100, 1000)
    assert estimate.value == pytest.approx(0.1)
    assert (estimate.low, estimate.high) == (
        pytest.approx(0.081406, abs=1e-6),
        pytest.approx(0.118594, abs=1e-6),
    )


def test_two_proportion_z_test_matches_the_hand_computed_case():
    # control 100/1000 clicked lists, B 130/1000.
    # pooled p = 230/2000 = 0.115; SE = sqrt(0.115 * 0.885 * (1/1000 + 1/1000)) = sqrt(0.00020355) = 0.0142671
    # z = 0.03 / 0.0142671 = 2.10274; p = 2 * (1 - Phi(2.10274)) = 0.03549
    # unpooled SE = sqrt(0.1*0.9/1000 + 0.13*0.87/1000) = sqrt(0.0002031) = 0.0142513
    # difference CI = 0.03 +- 1.96 * 0.0142513 = [0.002068, 0.057932]; lift 30%, CI [2.07%, 57.93%]
    c = st.compare_proportions(100, 1000, 130, 1000, mde=0.5)
    assert c.diff == pytest.approx(0.03)
    assert c.statistic == pytest.approx(2.10274, abs=1e-4)
    assert c.p_value == pytest.approx(0.03549, abs=1e-4)
    assert (c.diff_low, c.diff_high) == (pytest.approx(0.002068, abs=1e-5), pytest.approx(0.057932, abs=1e-5))
    assert c.lift == pytest.approx(0.30)
    assert (c.lift_low, c.lift_high) == (pytest.approx(0.02068, abs=1e-4), pytest.approx(0.57932, abs=1e-4))


def test_minimum_sample_size_for_the_effect_asked_about():
    # base 0.10, +30% -> 0.13, mid 0.115:
    # (1.95996 * sqrt(2 * 0.115 * 0.885) + 0.84162 * sqrt(0.1 * 0.9 + 0.13 * 0.87))^2 / 0.03^2
    # = (0.884267 + 0.379290)^2 / 0.0009 = 1.596578 / 0.0009 = 1773.98 -> 1774 lists per arm
    assert st.sample_size_proportions(0.10, 0.30) == 1774
    # the textbook figure for 10% -> 11% (alpha 0.05, power 0.8) is ~14,750
    assert 14_700 <= st.sample_size_proportions(0.10, 0.10) <= 14_800
    assert st.sample_size_proportions(0.0, 0.10) is None


def test_verdict_not_enough_data_then_better_by_x_percent():
    # 1000 lists per arm is fewer than the 1774 needed to see +30%: not enough data
    assert st.verdict(st.compare_proportions(100, 1000, 130, 1000, mde=0.30), arm="B") == st.NOT_ENOUGH
    # asked about +50% (686 lists needed), the same data is enough, and p = 0.035 < 0.05
    verdict = st.verdict(st.compare_proportions(100, 1000, 130, 1000, mde=0.50), arm="B")
    assert verdict == "B better by 30.0% (CI +2.1% to +57.9%)"
    # enough data, no significant change
    assert st.verdict(st.compare_proportions(1000, 10000, 1010, 10000, mde=0.5), arm="B") == st.NO_DIFFERENCE
    # and the other way round
    assert st.verdict(st.compare_proportions(130, 1000, 100, 1000, mde=0.5), arm="B").startswith("B worse by")


def test_welch_test_on_revenue_per_list_matches_the_hand_computed_case():
    # control lists' revenue 1, 2, 3, 4: mean 2.5, variance 1.6667; B: 2, 4, 6, 8: mean 5, variance 6.6667
    # SE = sqrt(1.6667/4 + 6.6667/4) = sqrt(2.08333) = 1.443376; t = 2.5 / 1.443376 = 1.732051
    # df = 2.08333^2 / (0.41667^2/3 + 1.66667^2/3) = 4.340278 / 0.983796 = 4.41176
    control, arm = [1, 2, 3, 4], [2, 4, 6, 8]
    c = st.compare_means(
        (sum(control), sum(v * v for v in control), 4), (sum(arm), sum(v * v for v in arm), 4), mde=0.5
    )
    assert c.diff == pytest.approx(2.5)
    assert c.statistic == pytest.approx(1.732051, abs=1e-5)
    df = 4.340278 / 0.983796
    assert c.p_value == pytest.approx(2 * scipy_stats.t.sf(1.732051, df), abs=1e-5)
    # the same as scipy's own Welch test on the raw values
    assert c.p_value == pytest.approx(scipy_stats.ttest_ind(arm, control, equal_var=False).pvalue, abs=1e-9)
    half = scipy_stats.t.ppf(0.975, df) * 1.443376
    assert (c.diff_low, c.diff_high) == (
        pytest.approx(2.5 - half, abs=1e-4),
        pytest.approx(2.5 + half, abs=1e-4),
    )
    # n = 2 * (1.95996 + 0.84162)^2 * 1.6667 / (2.5 * 0.5)^2 = 2 * 7.84886 * 1.66667 / 1.5625 = 16.74 -> 17
    assert c.required_n == 17


def test_mean_interval_uses_the_t_quantile():
    estimate = st.mean(10.0, 30.0, 4)  # values 1, 2, 3, 4
    half = scipy_stats.t.ppf(0.975, 3) * math.sqrt(1.6666667 / 4)
    assert (estimate.value, estimate.low, estimate.high) == (
        pytest.approx(2.5),
        pytest.approx(2.5 - half),
        pytest.approx(2.5 + half),
    )


def test_an_arm_that_served_no_list_has_no_rate_no_mean_and_no_test():
    # a just-started experiment: B has no list yet; 0 lists say nothing, so nothing reads as a measured 0
    assert st.proportion(0, 0) == st.mean(0.0, 0.0, 0) == st.Estimate(None, None, None)
    rates = st.compare_proportions(100, 1000, 0, 0, mde=0.3)
    assert (rates.control, rates.arm) == (pytest.approx(0.1), None)
    assert (rates.diff, rates.diff_low, rates.statistic, rates.p_value, rates.lift) == (None,) * 5
    assert rates.required_n == 1774  # what the control's rate asks for, as with data
    revenue = st.compare_means((0.0, 0.0, 0), (30.0, 900.0, 4), mde=0.05)
    assert (revenue.control, revenue.arm, revenue.p_value, revenue.required_n) == (None, 7.5, None, None)
    assert st.verdict(rates, arm="B") == st.verdict(revenue, arm="B") == st.NOT_ENOUGH
