"""Leakage: changing the future must not change anything fitted or read before it.

A random-walk feature frame and a twin whose daily returns after date T are redrawn (so closes, causal features and
every target that reaches past T change), with the twin's feature values after T scrambled as well. Every walk-forward
fold of the two frames must then agree on whatever lies wholly before T: the fitted scaler and selected features of
every fold whose training targets end before T, and the tabular rows and windows of every part whose origins and
targets end before T (in particular all parts of the folds whose test ends before T).
"""
import numpy as np
import pandas as pd
import pytest

from cryptoforecast.config import get_config
from cryptoforecast.dataset import synthetic_feature_frame, walk_forward
from cryptoforecast.features import feature_columns, build_features, synthetic_ohlcv

N_DAYS, T_POS = 900, 790
CFG = get_config()
H = CFG.max_horizon


@pytest.fixture(scope='module')
def twins():
    rng = np.random.default_rng(7)
    r = rng.normal(0, 0.03, N_DAYS)
    r2 = r.copy()
    r2[T_POS + 1:] = rng.normal(0.01, 0.05, N_DAYS - T_POS - 1)       # a different future after T
    a = synthetic_feature_frame(returns=r, horizons=CFG.horizons)
    b = synthetic_feature_frame(returns=r2, horizons=CFG.horizons)
    T = a.index[T_POS]
    after = (b.index > T)[:, None]
    cols = feature_columns(b)
    b[cols] = b[cols].astype(float).where(~np.repeat(after, len(cols), axis=1), rng.normal(size=(len(b), len(cols))))
    kw = dict(n_folds=4, test_size=60, min_train=300, n_features=5)
    return T, a, b, walk_forward(a, CFG, **kw), walk_forward(b, CFG, **kw)


def _before(last_origin, T) -> bool:
    "True when the origins up to `last_origin` and all their targets lie on or before T."
    return last_origin + pd.Timedelta(days=H) <= T


def test_frames_differ_only_after_T(twins):
    T, a, b, _, _ = twins
    cols = feature_columns(a)
    pd.testing.assert_frame_equal(a.loc[:T, cols].astype(float), b.loc[:T, cols])
    assert not a.loc[a.index > T, cols].equals(b.loc[b.index > T, cols])
    # targets reaching past T changed, the others did not
    y = 'target_logret_30d'
    early = a.index + pd.Timedelta(days=30) <= T
    np.testing.assert_array_equal(a.loc[early, y], b.loc[early, y])
    assert not np.allclose(a.loc[~early, y].dropna(), b.loc[~early, y].dropna())


def test_same_layout(twins):
    _, _, _, fa, fb = twins
    for x, y in zip(fa, fb):
        for part in ('train', 'val', 'test'): assert x.origins(part).equals(y.origins(part))


def assert_fitted_state_unchanged(T, fa, fb) -> int:
    "Scaler, features and dropped columns agree for every fold whose training targets end by T; returns how many."
    checked = 0
    for x, y in zip(fa, fb):
        if not _before(x.train[-1], T): continue
        checked += 1
        assert x.features == y.features, x.k
        np.testing.assert_array_equal(x.scaler.center_, y.scaler.center_)
        np.testing.assert_array_equal(x.scaler.scale_, y.scaler.scale_)
        assert x.dropped == y.dropped
    return checked


def assert_rows_unchanged(T, fa, fb) -> tuple[int, int]:
    "Rows and windows agree for parts wholly before T (and origins before T - H elsewhere); returns (unchanged, changed) parts."
    unchanged = changed = 0
    for x, y in zip(fa, fb):
        for part in ('train', 'val', 'test'):
            ix = x.origins(part)
            Xa, Ya = x.tabular(part); Xb, Yb = y.tabular(part)
            Wa, Va, _ = x.windows(part); Wb, Vb, _ = y.windows(part)
            if _before(ix[-1], T):
                unchanged += 1
                pd.testing.assert_frame_equal(Xa, Xb); pd.testing.assert_frame_equal(Ya, Yb)
                np.testing.assert_array_equal(Wa, Wb); np.testing.assert_array_equal(Va, Vb)
            else:
                early = ix + pd.Timedelta(days=H) <= T
                pd.testing.assert_frame_equal(Xa[early], Xb[early])
                np.testing.assert_array_equal(Wa[early], Wb[early])
                changed += not np.array_equal(Wa, Wb)
    return unchanged, changed


def test_fitted_state_unchanged_before_T(twins):
    T, _, _, fa, fb = twins
    assert assert_fitted_state_unchanged(T, fa, fb) == 4   # every fold trains before T here


def test_rows_and_windows_unchanged_before_T(twins):
    T, _, _, fa, fb = twins
    unchanged, changed = assert_rows_unchanged(T, fa, fb)
    assert len([x for x in fa if _before(x.test[-1], T)]) == 1   # fold 0 lies wholly before T, targets included
    assert unchanged >= 5 and changed >= 2                        # the check is not vacuous


def test_real_feature_pipeline():
    "The same through `build_features`: an OHLCV history whose prices and volumes after T are changed."
    o = synthetic_ohlcv(N_DAYS, seed=3)
    T = o.index[T_POS]
    o2 = o.copy()
    after = o2.index > T
    rng = np.random.default_rng(11)
    factor = np.exp(np.cumsum(rng.normal(0.01, 0.05, after.sum())))
    for c in ('open', 'high', 'low', 'close'): o2.loc[after, c] = o2.loc[after, c] * factor
    o2.loc[after, 'volume'] = o2.loc[after, 'volume'] * rng.uniform(0.2, 5, after.sum())
    fa_frame, fb_frame = build_features(o, horizons=CFG.horizons), build_features(o2, horizons=CFG.horizons)
    kw = dict(n_folds=3, test_size=50, min_train=200)
    fa, fb = walk_forward(fa_frame, CFG, **kw), walk_forward(fb_frame, CFG, **kw)
    assert assert_fitted_state_unchanged(T, fa, fb) >= 2
    unchanged, changed = assert_rows_unchanged(T, fa, fb)
    assert unchanged >= 3 and changed >= 1


def test_val_targets_never_reach_test(twins):
    _, _, _, fa, _ = twins
    for f in fa:
        assert f.train[-1] + pd.Timedelta(days=H) < f.val[0]
        assert f.val[-1] + pd.Timedelta(days=H) < f.test[0]
