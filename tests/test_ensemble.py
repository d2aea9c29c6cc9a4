"""The ensemble on real BTC data: regimes and ensemble forecasts never read prices after their date."""
import numpy as np
import pandas as pd
import pytest

from cryptoforecast.backtest import coin_folds
from cryptoforecast.config import get_config
from cryptoforecast.data import load_universe
from cryptoforecast.metrics import QUANTILE_COLS
from cryptoforecast.ensemble import EnsembleForecaster, RegimeDetector
from conftest import DATA_DIR

EMBARGO = 30  # the largest horizon: an outcome of origin o is known at o + 30 at the latest
FOLDS = dict(n_folds=2, test_size=146, val_size=90, min_train=300)

@pytest.fixture(scope='module')
def btc(tmp_path_factory):
    if not DATA_DIR.exists(): pytest.skip('no real data')
    return load_universe(DATA_DIR, ['BTC'], cache_dir=tmp_path_factory.mktemp('cache'))['BTC']

def perturb_after(df: pd.DataFrame, T, seed: int = 0) -> pd.DataFrame:
    "A copy of an OHLCV frame whose prices and volumes after `T` are scrambled."
    rng = np.random.default_rng(seed)
    out = df.copy()
    after = out.index > T
    factor = np.exp(rng.normal(0, 0.2, after.sum()))
    for c in ('open', 'high', 'low', 'close'): out.loc[after, c] = out.loc[after, c] * factor
    out.loc[after, 'volume'] = out.loc[after, 'volume'] * rng.uniform(0.2, 5, after.sum())
    out.attrs = df.attrs
    return out

def test_regimes_do_not_read_the_future(btc):
    T = btc.index[-300]
    pert = perturb_after(btc, T)
    until = T - pd.Timedelta(days=100)   # the Markov model is fitted on 'training' returns before T
    a = RegimeDetector(markov=True).fit(btc['close'], until=until).transform(btc['close'])
    b = RegimeDetector(markov=True).fit(pert['close'], until=until).transform(pert['close'])
    pd.testing.assert_frame_equal(a.loc[:T], b.loc[:T])
    assert not a.loc[a.index > T, 'vol_pct'].equals(b.loc[b.index > T, 'vol_pct'])
    assert set(a['vol']) == {'low', 'mid', 'high'} and set(a['trend']) == {'down', 'up'}

def _ensemble_predictions(ohlcv: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    folds, skipped = coin_folds({'BTC': ohlcv}, ['BTC'], get_config(), progress=False, **FOLDS)
    assert not skipped, skipped
    preds, weights = [], []
    for f in folds['BTC']:
        m = EnsembleForecaster(seed=3).fit(f)
        preds.append(m.predict(f, 'test').assign(fold=f.k))
        weights.append(m.weights_frame().assign(fold=f.k))
    return pd.concat(preds, ignore_index=True), pd.concat(weights)

def test_ensemble_does_not_read_the_future(btc):
    "Perturbing every price after T leaves every ensemble forecast with origin <= T - 30 unchanged."
    T = btc.index[-100]   # inside the last fold's test part
    base, wb = _ensemble_predictions(btc)
    pert, wp = _ensemble_predictions(perturb_after(btc, T))
    np.testing.assert_allclose(wb.drop(columns='fold').sum(axis=1), 1)
    cols = ['mean', 'point', 'sigma', *QUANTILE_COLS]
    early = lambda p: p[p['origin'] <= T - pd.Timedelta(days=EMBARGO)].sort_values(['fold', 'origin', 'horizon'])
    a, b = early(base), early(pert)
    assert len(a) > 146 * 3
    np.testing.assert_array_equal(a[cols].to_numpy(), b[cols].to_numpy())
    late = lambda p: p[p['origin'] > T].sort_values(['fold', 'origin', 'horizon'])['mean'].to_numpy()
    assert not np.allclose(late(base), late(pert))
