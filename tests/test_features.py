"""The feature frame on real data: no lookahead (cross-asset included), a clean BTC frame, and the CLI."""
import numpy as np
import pandas as pd
import pytest

from cryptoforecast.features import (FEATURE_GROUPS, build_features, feature_catalogue, feature_columns, feature_group,
                                     market_context, target_columns, warmup_days, Cols)
from conftest import DATA_DIR, needs_data, run_cli

CUT_DATES = ('2018-09-30', '2021-05-19', '2024-03-01')   # a bear market, a crash day, a rally
COINS = ('BTC', 'ETH', 'SOL', 'DOGE')                    # SOL starts in 2020: too short at the first cut, used at the others

@pytest.fixture(scope='module')
def universe():
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    from cryptoforecast.data import load_universe
    return load_universe(DATA_DIR)

def perturb_after(df: pd.DataFrame, cut, rng) -> pd.DataFrame:
    "A copy of `df` whose rows after `cut` are randomly rescaled (prices by one factor per row, so OHLC stays consistent)."
    out = df.copy()
    future = out.index > pd.Timestamp(cut, tz='UTC')
    k = int(future.sum())
    out.loc[future, ['open', 'high', 'low', 'close']] *= np.exp(rng.normal(0, 0.3, k))[:, None]
    out.loc[future, 'volume'] *= rng.lognormal(0, 1, k)
    return out

def non_target(df): return [c for c in df.columns if c not in target_columns(df)]

def assert_no_lookahead(universe, cut, coins, seed=0):
    "Features up to `cut` are identical whether the data end at `cut` or go on with a random future."
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp(cut, tz='UTC')
    ended = {s: df.loc[:ts] for s, df in universe.items() if df.index[0] <= ts}   # coins listed later do not exist yet
    perturbed = {s: perturb_after(df, cut, rng) for s, df in universe.items()}
    m_ended, m_perturbed, m_full = market_context(ended), market_context(perturbed), market_context(universe)
    pd.testing.assert_frame_equal(m_ended, m_perturbed.loc[:ts], check_exact=True, check_freq=False)
    checked = []
    for coin in coins:
        if coin not in ended or len(ended[coin]) <= warmup_days(): continue
        a = build_features(ended[coin], m_ended)
        b = build_features(perturbed[coin], m_perturbed)
        cols = non_target(a)
        assert any(c.startswith(('beta_', 'corr_index')) for c in cols), "cross-asset features are covered"
        pd.testing.assert_frame_equal(a[cols], b.loc[:ts, cols], check_exact=True, check_freq=False, obj=f"{coin} features up to {cut}")
        # the perturbation bites: the 30-day targets of the last 30 days before the cut see the changed future
        target = 'target_logret_30d'
        unchanged = build_features(universe[coin], m_full).loc[:ts, target].iloc[-30:]
        changed = b.loc[:ts, target].iloc[-30:]
        assert a[target].iloc[-30:].isna().all() and changed.notna().all(), f"{coin}: only the continued data know those targets"
        assert not np.allclose(unchanged, changed), f"{coin}: the perturbation did not reach the targets"
        checked.append(coin)
    return checked

@needs_data
@pytest.mark.parametrize('cut', CUT_DATES)
def test_features_do_not_look_ahead(universe, cut):
    checked = assert_no_lookahead(universe, cut, COINS)
    assert 'BTC' in checked and 'ETH' in checked

@needs_data
def test_leakage_check_catches_a_leak(universe):
    "The check above is not vacuous: a feature that peeks one day ahead fails it."
    @feature_group('peeking')
    def peeking(b):
        c = Cols(b); c.add('tomorrow_close_ratio', np.r_[b.close[1:] / b.close[:-1], np.nan], 'close[t+1] / close[t]'); return c
    try:
        with pytest.raises(AssertionError, match='tomorrow_close_ratio'):
            assert_no_lookahead(universe, CUT_DATES[1], ('BTC',))
    finally:
        del FEATURE_GROUPS['peeking']

@needs_data
def test_btc_feature_frame_is_clean(universe):
    btc = build_features(universe['BTC'], market_context(universe))
    feats = feature_columns(btc)
    assert len(feats) >= 150, len(feats)
    assert btc.attrs['warmup_rows'] == warmup_days() == len(universe['BTC']) - len(btc)
    X = btc[feats]
    all_nan = [c for c in feats if X[c].isna().all()]
    constant = [c for c in feats if X[c].nunique() <= 1]
    assert not all_nan and not constant, (all_nan, constant)
    numeric = btc.select_dtypes('number').to_numpy()
    assert not np.isinf(numeric).any(), "no infinite value anywhere"
    # every column is in the catalogue (BTC lacks only its self-referencing BTC columns)
    cat = feature_catalogue()
    assert set(feats) <= set(cat['name'])
    assert sorted(set(cat['name']) - set(feats)) == sorted(c for c in cat['name'] if c.startswith(('btc_', 'beta_btc', 'corr_btc', 'rel_btc')))
    # targets: NaN only where t+h is past the data
    for h in (1, 7, 30):
        assert btc[f'target_logret_{h}d'].isna().sum() == h
        np.testing.assert_allclose(btc[f'target_logret_{h}d'].iloc[0], np.log(btc.close.iloc[h] / btc.close.iloc[0]))

@needs_data
@pytest.mark.slow
def test_every_coin_builds_or_names_its_short_history(universe):
    market = market_context(universe)
    for sym, df in universe.items():
        if len(df) <= warmup_days():
            with pytest.raises(Exception, match=f'{sym}: .*warm-up'): build_features(df, market)
            continue
        f = build_features(df, market)
        assert not np.isinf(f.select_dtypes('number').to_numpy()).any(), sym

@pytest.fixture(scope='module')
def cli_dir(tmp_path_factory):
    "One working folder for the CLI runs, so the loader's parquet cache is built once."
    return tmp_path_factory.mktemp('cli')

@needs_data
def test_features_cli(cli_dir):
    out = cli_dir/'tmp.parquet'
    r = run_cli('features', 'BTC', '--out', out, cwd=cli_dir, env={'CRYPTOFORECAST_DATA_DIR': str(DATA_DIR)})
    assert r.returncode == 0, r.stderr
    df = pd.read_parquet(out)
    assert f"{df.shape[0]} rows x {df.shape[1]} columns" in r.stdout and f"warm-up rows dropped: {warmup_days()}" in r.stdout
    assert len(feature_columns(df)) >= 150 and target_columns(df)
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == 'UTC'

@needs_data
@pytest.mark.parametrize('coin, problem', [('NOSUCHCOIN', 'no data for NOSUCHCOIN'), ('PEPE', 'PEPE: 119 daily rows')])
def test_features_cli_errors(cli_dir, coin, problem):
    r = run_cli('features', coin, '--no-market', '--out', cli_dir/'x.parquet', cwd=cli_dir, env={'CRYPTOFORECAST_DATA_DIR': str(DATA_DIR)})
    assert r.returncode == 2 and problem in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
