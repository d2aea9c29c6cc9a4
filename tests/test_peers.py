"""The peers (`garch`, `ets`, `autoarima`) on BTC: fitted on one walk-forward fold, their test forecasts are finite
with quantiles in order; changing the prices after a date T leaves every forecast at an origin up to T - max horizon
unchanged (their own sigma too); saved and loaded, they predict the same numbers on the fold's frame as the fitted model
did on the fold; given only the last lookback + max horizon days (as `train` gives a deployed model), nearly the same;
the same seed gives the same rows; garch's rows carry GARCH-t's sigma, not the volatility model the point models share."""
import numpy as np
import pandas as pd
import pytest

from conftest import prices_times_random_walk_after as perturb_after, DATA_DIR, needs_data
from cryptoforecast.config import get_config
from cryptoforecast.data import load_universe
from cryptoforecast.dataset import walk_forward
from cryptoforecast.forecaster import make_model, model_class
from cryptoforecast.metrics import QUANTILE_COLS
from cryptoforecast.volatility import GARCHVol, volatility_frame

CFG = get_config()
H = CFG.max_horizon
PEERS = ('garch', 'ets', 'autoarima')
NUMBERS = ['mean', *QUANTILE_COLS, 'sigma']

def last_fold(ohlcv):
    return walk_forward(volatility_frame(ohlcv), CFG, n_folds=5, test_size=146, val_size=90, min_train=300, n_features=1)[-1]

@pytest.fixture(scope='module')
def btc():
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    return load_universe(DATA_DIR, symbols=['BTC'])['BTC']

@pytest.fixture(scope='module')
def fold(btc): return last_fold(btc)

@needs_data
@pytest.mark.parametrize('name', PEERS)
def test_test_forecasts_are_finite_and_ordered(name, fold):
    p = make_model(name, seed=0).fit(fold).predict(fold, 'test')
    assert len(p) == len(fold.test) * len(fold.horizons) and p['model'].eq(name).all()
    q = p[list(QUANTILE_COLS)].to_numpy()
    assert np.isfinite(p[NUMBERS].to_numpy()).all()
    assert (np.diff(q, axis=1) > 0).all()          # strictly: a real interval at every level
    width = (p['q0.975'] - p['q0.025']).groupby(p['horizon']).median()
    assert width.is_monotonic_increasing, width    # longer horizons, wider intervals

@needs_data
@pytest.mark.parametrize('name', PEERS)
def test_changing_the_future_leaves_earlier_forecasts_unchanged(name, btc, fold):
    T = fold.test[len(fold.test) // 2]
    twin = last_fold(perturb_after(btc, T, seed=1))
    a = make_model(name, seed=0).fit(fold).predict(fold, 'test')
    b = make_model(name, seed=0).fit(twin).predict(twin, 'test')
    early = (a['origin'] <= T - pd.Timedelta(days=H)).to_numpy()
    assert early.sum() > 100
    np.testing.assert_allclose(b.loc[early, NUMBERS].to_numpy(), a.loc[early, NUMBERS].to_numpy(), rtol=1e-9, atol=1e-12)
    late = (a['origin'] > T).to_numpy()
    assert not np.allclose(b.loc[late, NUMBERS].to_numpy(), a.loc[late, NUMBERS].to_numpy()), name   # the future did change

@needs_data
@pytest.mark.parametrize('name', PEERS)
def test_save_load_predict_frame_round_trip(name, fold, tmp_path):
    m = make_model(name, seed=0).fit(fold)
    want = m.predict(fold, 'test').set_index(['origin', 'horizon'])
    m.save(tmp_path / name)
    loaded = model_class(name).load(tmp_path / name)
    got = loaded.predict_frame(fold.frame).set_index(['origin', 'horizon']).reindex(want.index)
    np.testing.assert_allclose(got[NUMBERS].to_numpy(), want[NUMBERS].to_numpy(), atol=1e-6, rtol=0)

@needs_data
@pytest.mark.parametrize('name', PEERS)
def test_a_deployed_model_given_recent_days_only_forecasts_what_the_backtest_did(name, fold):
    "`train` forecasts from the last lookback + max horizon days: the states restart there, the forecasts barely move."
    m = make_model(name, seed=0).fit(fold)
    want = m.predict(fold, 'test').set_index(['origin', 'horizon'])
    recent = fold.frame.iloc[-(fold.lookback + H):]
    got = m.predict_frame(recent).set_index(['origin', 'horizon'])
    want = want.loc[got.index]
    assert len(got) >= 3 * 30
    np.testing.assert_allclose(got['mean'].to_numpy(), want['mean'].to_numpy(), atol=1e-3, rtol=0)
    width = lambda p: (p['q0.975'] - p['q0.025']).to_numpy()
    np.testing.assert_allclose(width(got), width(want), rtol=0.02)

@needs_data
@pytest.mark.parametrize('name', PEERS)
def test_the_same_seed_gives_the_same_rows(name, fold):
    a = make_model(name, seed=0).fit(fold).predict(fold, 'test')
    b = make_model(name, seed=0).fit(fold).predict(fold, 'test')
    pd.testing.assert_frame_equal(a, b)

@needs_data
def test_garch_rows_carry_garchs_own_sigma_not_the_shared_one(fold):
    rows = make_model('garch', seed=0).fit(fold).predict(fold, 'test')
    var = GARCHVol().fit(fold).variance(fold).reindex(fold.test)[list(fold.horizons)].to_numpy(float)
    np.testing.assert_allclose(rows['sigma'].to_numpy(), np.sqrt(var).reshape(-1), rtol=1e-12)
    shared = make_model('drift', seed=0).fit(fold).predict(fold, 'test')    # a point model: the fold's volatility model
    assert not np.allclose(rows['sigma'].to_numpy(), shared['sigma'].to_numpy())
    chosen = make_model('drift', seed=0, volatility='garch').fit(fold).predict(fold, 'test')   # or the one chosen for it
    np.testing.assert_allclose(chosen['sigma'].to_numpy(), rows['sigma'].to_numpy(), rtol=1e-12)
