"""Volatility forecasts on real coins: changing BTC's future leaves every earlier sigma unchanged, for every
estimator, the pooled one, the learned one, the project's and the stack; the pooled HAR fits once across three real coins
and forecasts each of them; the global learner and the stack, pooled across two coins and forecasting a third zero-shot,
read no price after the origin of any coin and give the same numbers with the same seed."""
import numpy as np
import pandas as pd
import pytest

from conftest import prices_times_random_walk_after as perturb_after, DATA_DIR, needs_data
from cryptoforecast.config import get_config
from cryptoforecast.data import load_universe
from cryptoforecast.dataset import walk_forward
from cryptoforecast.volatility import (ESTIMATORS, LearnedVol, PooledHAR, ProjectVol, StackedVol, fold_sigma, fold_volatility,
                                       forecast_folds, pool_volatility, predictions, relative_qlike, volatility_frame)

CFG = get_config()
H = CFG.max_horizon
COINS = ('BTC', 'ETH', 'XRP')

def last_fold(frame):
    return walk_forward(frame, CFG, n_folds=5, test_size=146, val_size=90, min_train=300, n_features=1)[-1]

@pytest.fixture(scope='module')
def universe():
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    u = load_universe(DATA_DIR, symbols=list(COINS))
    return {c: u[c] for c in COINS}

@needs_data
def test_changing_btc_future_leaves_earlier_sigmas_unchanged(universe):
    btc = universe['BTC']
    f = last_fold(volatility_frame(btc))
    T = f.test[len(f.test) // 2]
    g = last_fold(volatility_frame(perturb_after(btc, T, seed=1)))
    models = {**ESTIMATORS, 'pooled_har': PooledHAR, 'project': ProjectVol,   # project: with its long-run pull
              'learned': LearnedVol, 'stack': StackedVol}                        # the stack: weights on its own validation
    pa = pd.concat([predictions(make().fit(f), f) for make in models.values()], ignore_index=True)
    pb = pd.concat([predictions(make().fit(g), g) for make in models.values()], ignore_index=True)
    assert len(pa) == len(pb) == len(models) * 3 * (len(f.val) + len(f.test))
    assert (pa.sigma > 0).all() and np.isfinite(pa.sigma).all()
    for name in pa.estimator.unique():
        a, b = pa[pa.estimator == name], pb[pb.estimator == name]
        early = (a.origin <= T - pd.Timedelta(days=H)).to_numpy()
        upto_t = (a.origin <= T).to_numpy()
        np.testing.assert_allclose(a.sigma[early], b.sigma[early], rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(a.sigma[upto_t], b.sigma[upto_t], rtol=1e-12, err_msg=name)
        assert (a.sigma[~upto_t].to_numpy() != b.sigma[~upto_t].to_numpy()).any(), name   # the future did change

@needs_data
def test_pooled_har_fits_once_across_three_real_coins(universe):
    folds = {c: [last_fold(volatility_frame(universe[c]))] for c in COINS}
    model = PooledHAR().fit_many([fs[0] for fs in folds.values()])
    assert model.coins_ == list(COINS)
    for h in CFG.horizons:
        persistence = model.coef_[h][1:].sum()   # centred log variance in and out: mean-reverting, not explosive
        assert 0.2 < persistence < 1.1, (h, model.coef_[h])
        assert 0.3 < model.scale_[h] < 3, (h, model.scale_[h])
    preds = forecast_folds(folds, estimators=('roll30',))
    pooled = preds[preds.estimator == 'pooled_har']
    assert sorted(pooled.coin.unique()) == sorted(COINS)
    assert len(pooled) == sum(3 * len(fs[0].test) for fs in folds.values())
    assert (pooled.sigma > 0).all() and np.isfinite(pooled.sigma).all()
    # one model: its forecasts for BTC differ from a pooled model fitted on BTC alone
    alone = predictions(PooledHAR().fit(folds['BTC'][0]), folds['BTC'][0], 'test')
    assert not np.allclose(alone.sigma.to_numpy(), pooled[pooled.coin == 'BTC'].sigma.to_numpy())
    # sigma is on the right scale: the pooled QLIKE is within reach of the rolling baseline's on every coin
    t = relative_qlike(preds, 'roll30').set_index('estimator')
    assert (t.loc['pooled_har', 'median_ratio'] < 1.5).all(), t

def pooled_sigmas(universe, seed: int = 42):
    "Learned and stacked sigmas of each coin's last fold, fitted across BTC and ETH; XRP forecast zero-shot."
    folds = {c: [last_fold(volatility_frame(universe[c]))] for c in COINS}
    pool_volatility(folds, fit_coins=['BTC', 'ETH'], seed=seed)
    out = {}
    for c, (f,) in folds.items():
        origins = f.val.append(f.test)
        out[c] = {m: fold_sigma(f, origins, fold_volatility(f, m)) for m in ('learned', 'stack')}
        out[c]['origins'] = origins
    return folds, out

@needs_data
def test_the_global_learner_and_the_stack_read_no_future_and_repeat_with_the_seed(universe):
    folds, a = pooled_sigmas(universe)
    assert folds['XRP'][0]._learned_vol.coins_ == ['BTC', 'ETH']             # XRP: zero-shot
    weights = folds['BTC'][0]._stack_weights
    for h, (w, _) in weights.items(): assert abs(w.sum() - 1) < 1e-9 and (w >= 0).all(), (h, w)
    _, again = pooled_sigmas(universe)
    for c in COINS:
        for m in ('learned', 'stack'):
            assert np.isfinite(a[c][m]).all() and (a[c][m] > 0).all(), (c, m)
            np.testing.assert_array_equal(a[c][m], again[c][m])
    f = folds['BTC'][0]
    T = f.test[len(f.test) // 2]
    twin = {**universe, 'BTC': perturb_after(universe['BTC'], T, seed=1)}
    _, b = pooled_sigmas(twin)
    for c in COINS:
        upto_t = np.asarray(a[c]['origins'] <= T)
        for m in ('learned', 'stack'):
            np.testing.assert_allclose(a[c][m][upto_t], b[c][m][upto_t], rtol=1e-12, err_msg=f"{c} {m}")
    later = np.asarray(a['BTC']['origins'] > T)
    assert not np.allclose(a['BTC']['stack'][later], b['BTC']['stack'][later])   # the future did change
