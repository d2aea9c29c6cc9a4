"Properties of the probabilistic scores of `cryptoforecast.metrics` on simulated forecasts (fast: no data, no training)."
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cryptoforecast.metrics import (QUANTILES, christoffersen_test, crps_from_quantiles, kupiec_test, pinball_matrix,
                                    pit_values, quantile_col, score_predictions, winkler_score)

FINE = tuple((np.arange(99) + 0.5) / 99)


def gaussian_quantiles(loc, scale, levels=QUANTILES) -> np.ndarray:
    "Quantiles `[n, levels]` of N(loc, scale) per row."
    loc, scale = np.broadcast_arrays(np.asarray(loc, float), np.asarray(scale, float))
    return loc[:, None] + scale[:, None] * stats.norm.ppf(levels)


@pytest.fixture(scope='module')
def draws():
    "Actuals with a known, changing distribution: y ~ N(mu_t, sd_t)."
    rng = np.random.default_rng(7)
    n = 20_000
    mu, sd = rng.normal(0, 0.01, n), rng.uniform(0.01, 0.05, n)
    return mu, sd, rng.normal(mu, sd)


@pytest.mark.parametrize('levels', [QUANTILES, FINE])
def test_pinball_and_crps_are_lowest_at_the_true_quantiles(draws, levels):
    mu, sd, y = draws
    scores = {}
    for name, (loc, scale) in {'true': (mu, sd), 'shifted': (mu + 0.3 * sd, sd), 'too narrow': (mu, 0.7 * sd),
                               'too wide': (mu, 1.4 * sd), 'ignores the mean': (0 * mu, sd),
                               'constant spread': (mu, np.full_like(sd, sd.mean()))}.items():
        Q = gaussian_quantiles(loc, scale, levels)
        scores[name] = (pinball_matrix(y, Q, levels).mean(), crps_from_quantiles(y, Q, levels))
    for name, (pb, crps) in scores.items():
        if name == 'true': continue
        assert scores['true'][0] < pb, (name, scores)
        assert scores['true'][1] < crps, (name, scores)


def test_crps_on_a_fine_grid_matches_the_gaussian_closed_form(draws):
    mu, sd, y = draws
    z = (y - mu) / sd
    exact = np.mean(sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi)))
    assert crps_from_quantiles(y, gaussian_quantiles(mu, sd, FINE), FINE) == pytest.approx(exact, rel=0.01)
    grid = crps_from_quantiles(y, gaussian_quantiles(mu, sd), QUANTILES)
    assert 0.94 * exact < grid < 0.995 * exact    # the documented bias of the nine-level grid: about 3% low
    five = (0.025, 0.1, 0.5, 0.9, 0.975)
    coarse = crps_from_quantiles(y, gaussian_quantiles(mu, sd, five), five)
    assert 0.84 * exact < coarse < 0.94 * exact   # and of the earlier five-level grid: about 11% low


def test_winkler_is_lowest_at_the_true_interval(draws):
    mu, sd, y = draws
    z = stats.norm.ppf(0.9)
    true = winkler_score(y, mu - z * sd, mu + z * sd, 0.8)
    for k in (0.7, 0.9, 1.1, 1.4):
        assert true < winkler_score(y, mu - k * z * sd, mu + k * z * sd, 0.8), k


def test_kupiec_rejects_60_percent_coverage_of_a_nominal_80_percent_interval():
    rng = np.random.default_rng(0)
    assert kupiec_test(rng.random(2000) < 0.6, 0.8)[1] < 1e-10
    assert kupiec_test(rng.random(2000) < 0.8, 0.8)[1] > 0.05
    assert kupiec_test(rng.random(2000) < 0.9, 0.8)[1] < 1e-10   # too wide is rejected as well


def test_kupiec_and_christoffersen_hold_their_size_on_calibrated_hits():
    "Under the null (independent hits at the nominal rate) each test rejects at 5% about 5% of the time."
    rng = np.random.default_rng(1)
    sims = [rng.random(500) < 0.8 for _ in range(400)]
    kupiec = np.mean([kupiec_test(h, 0.8)[1] < 0.05 for h in sims])
    christoffersen = np.mean([christoffersen_test(h)[1] < 0.05 for h in sims])
    assert 0.02 < kupiec < 0.09, kupiec
    assert 0.02 < christoffersen < 0.09, christoffersen


def markov_hits(n, p_miss_after_hit, p_miss_after_miss, seed=0) -> np.ndarray:
    "A hit sequence where misses follow misses with their own probability (clustering)."
    rng, out, hit = np.random.default_rng(seed), np.empty(n, bool), True
    for t in range(n):
        hit = rng.random() >= (p_miss_after_hit if hit else p_miss_after_miss)
        out[t] = hit
    return out


def test_christoffersen_detects_clustered_misses_at_the_right_rate():
    # stationary miss rate 0.125 / (1 - 0.5 + 0.125) = 0.2: the right coverage, in runs
    hits = markov_hits(2000, 0.125, 0.5)
    assert abs(1 - hits.mean() - 0.2) < 0.03
    assert christoffersen_test(hits)[1] < 1e-6
    assert kupiec_test(hits, 0.8)[1] > 0.001   # coverage alone cannot see it
    assert christoffersen_test(markov_hits(2000, 0.2, 0.2, seed=1))[1] > 0.01


def test_pit_is_uniform_for_calibrated_forecasts_and_not_for_overconfident_ones(draws):
    mu, sd, y = draws
    y, mu, sd = y[:3000], mu[:3000], sd[:3000]
    calibrated = pit_values(y, gaussian_quantiles(mu, sd, FINE), FINE)
    overconfident = pit_values(y, gaussian_quantiles(mu, 0.6 * sd, FINE), FINE)
    assert stats.kstest(calibrated, 'uniform').pvalue > 0.05
    assert stats.kstest(overconfident, 'uniform').pvalue < 1e-10
    assert np.mean((overconfident < 0.1) | (overconfident > 0.9)) > 0.3   # a U shape: too many actuals in the tails
    # on the five-level grid the cell counts are right (chi-square on the grid's cells)
    edges = np.concatenate([[0], QUANTILES, [1]])
    for pit, ok in ((pit_values(y, gaussian_quantiles(mu, sd), QUANTILES), True),
                    (pit_values(y, gaussian_quantiles(mu, 0.6 * sd), QUANTILES), False)):
        p = stats.chisquare(np.histogram(pit, edges)[0], len(pit) * np.diff(edges)).pvalue
        assert (p > 0.01) if ok else (p < 1e-10), p


def simulated_frame(n=1500, seed=3) -> pd.DataFrame:
    "Two coins, 1-day horizon: a calibrated model, an over-confident one and a random walk with too wide intervals."
    rng = np.random.default_rng(seed)
    frames = []
    for coin in ('AAA', 'BBB'):
        sd = 0.03 * np.exp(0.5 * np.sin(np.arange(n) / 60))
        y = rng.normal(0, sd)
        origins = pd.date_range('2022-01-01', periods=n, tz='UTC')
        for model, loc, scale in (('calibrated', 0 * sd, sd), ('overconfident', 0 * sd, 0.6 * sd), ('naive', 0 * sd, 2.0 * sd)):
            d = pd.DataFrame({'coin': coin, 'origin': origins, 'horizon': 1, 'model': model, 'mean': loc, 'actual': y})
            Q = gaussian_quantiles(loc, scale)
            for j, q in enumerate(QUANTILES): d[quantile_col(q)] = Q[:, j]
            frames.append(d)
    return pd.concat(frames, ignore_index=True)


def test_score_predictions_ranks_and_tests_the_uncertainty():
    sc = score_predictions(simulated_frame(), by=('coin', 'model', 'horizon')).set_index(['coin', 'model'])
    for coin in ('AAA', 'BBB'):
        cal, over, rw = (sc.loc[(coin, m)] for m in ('calibrated', 'overconfident', 'naive'))
        assert rw.pinball_ratio == pytest.approx(1.0)
        assert cal.pinball_ratio < 1 and cal.pinball_ratio < over.pinball_ratio
        assert cal.crps < over.crps and cal.winkler80 < over.winkler80 and cal.winkler95 < over.winkler95
        assert cal.kupiec_p80 > 0.01 and cal.kupiec_p95 > 0.01
        assert over.kupiec_p80 < 1e-6 and rw.kupiec_p80 < 1e-6
        assert cal.christoffersen_p80 > 0.01
        assert cal.rel_mae == pytest.approx(1.0) and over.rel_mae == pytest.approx(1.0)   # the old columns: same mean, same MAE
