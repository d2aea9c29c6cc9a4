"""Decisions from forecasts on real returns and through the CLI: an oracle forecast earns a very high Sharpe ratio and a
shuffled one about nothing, costs lower every result, changing the future moves no earlier decision, and
`cryptoforecast strategy` writes its tables or refuses bad input in one line with exit code 2."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import DATA_DIR, needs_data, run_cli
from cryptoforecast.decisions import (PORTFOLIOS, STRATEGIES, bps, oracle, perturb_after, run_portfolio, shuffled,
                                      strategy_returns, strategy_table, synthetic_predictions, trading_rows)
from cryptoforecast.metrics import quantile_col

COINS = ('BTC', 'ETH', 'LTC', 'XRP')

def rw_predictions(universe: dict) -> pd.DataFrame:
    """A predictions frame on real prices whose forecast is the random walk's with a 30-day rolling volatility (known at
    the origin) and a small mean of yesterday's return; `actual` is the next day's realised log return."""
    rows = []
    for coin, df in universe.items():
        r = np.log(df['close']).diff()
        sigma = r.rolling(30).std()
        mean = 0.05 * r
        frame = pd.DataFrame({'coin': coin, 'origin': df.index, 'horizon': 1, 'model': 'rw', 'mean': mean.to_numpy(),
                              'sigma': sigma.to_numpy(), 'actual': r.shift(-1).to_numpy(), 'fold': 0})
        for q in (0.025, 0.1, 0.5, 0.9, 0.975): frame[quantile_col(q)] = mean.to_numpy() + sigma.to_numpy() * stats.norm.ppf(q)
        rows.append(frame.dropna(subset=['mean', 'sigma']))
    return pd.concat(rows, ignore_index=True)

@pytest.fixture(scope='module')
def real_rows():
    if not DATA_DIR.exists(): pytest.skip(f"real data not found at {DATA_DIR}")
    from cryptoforecast.data import load_universe
    u = load_universe(DATA_DIR, symbols=list(COINS))
    return trading_rows(rw_predictions({c: u[c].loc['2019-01-01':] for c in COINS}))

@needs_data
def test_oracle_is_spectacular_and_shuffled_earns_about_nothing_on_real_returns(real_rows):
    assert real_rows['origin'].nunique() > 2000
    ora = strategy_table(strategy_returns(oracle(real_rows), ('long_short',), cost=bps())).iloc[0]
    assert ora.sharpe > 10 and ora.hit_rate > 0.95 and ora.dsr > 0.99, ora
    # shuffled forecasts on demeaned returns (no drift for a sign to catch by luck), before costs
    flat = real_rows.assign(actual=real_rows['actual'] - real_rows.groupby('coin')['actual'].transform('mean'))
    for seed in (1, 2):
        sh = strategy_table(strategy_returns(shuffled(flat, seed=seed), ('long_short', 'long_flat'), cost=0.0))
        assert (sh['sharpe'].abs() < 0.7).all(), sh[['strategy', 'sharpe']]   # se of one annual Sharpe over 7 years ~0.4

@needs_data
def test_costs_lower_every_book_that_trades(real_rows):
    free = strategy_table(strategy_returns(real_rows, STRATEGIES, cost=0.0))
    paid = strategy_table(strategy_returns(real_rows, STRATEGIES, cost=bps(10, 5)))
    trades = (free['turnover'] > 0).to_numpy()                 # a rule that never trades (here long_flat_80) pays nothing
    assert trades.sum() >= 4
    assert (paid['ann_return'][trades] < free['ann_return'][trades]).all()
    assert (paid['sharpe'][trades] < free['sharpe'][trades]).all()
    for kind in PORTFOLIOS:
        a, _ = run_portfolio(real_rows, kind, cost=0.0)
        b, _ = run_portfolio(real_rows, kind, cost=bps())
        moved = a['turnover'] > 1e-9                         # below that, the cost is under a float's resolution
        assert (b['net'] <= a['net']).all() and (b['net'][moved] < a['net'][moved]).all() and moved.sum() > 50, kind

@needs_data
def test_changing_realised_returns_after_t_moves_no_earlier_decision(real_rows):
    T = real_rows['origin'].sort_values().unique()[1500]
    twin = perturb_after(real_rows, T, seed=3)
    a, b = strategy_returns(real_rows), strategy_returns(twin)
    early = (a['origin'] <= T).to_numpy()
    np.testing.assert_array_equal(a['position'][early], b['position'][early])
    np.testing.assert_array_equal(a['net'][a['origin'] < T], b['net'][b['origin'] < T])
    assert (a['net'][~early].to_numpy() != b['net'][~early].to_numpy()).any()
    for kind in PORTFOLIOS:
        _, wa = run_portfolio(real_rows, kind)
        _, wb = run_portfolio(twin, kind)
        pd.testing.assert_frame_equal(wa.loc[:T], wb.loc[:T])
        assert not np.allclose(wa.loc[T:].iloc[1:].to_numpy(), wb.loc[T:].iloc[1:].to_numpy()), kind

def synthetic_file(tmp_path, **kw):
    p = synthetic_predictions(**{'n_days': 150, 'coins': [f'C{i}' for i in range(6)], 'horizons': (1, 7), **kw})
    path = tmp_path/'preds.parquet'
    p.to_parquet(path)
    return path

def test_strategy_cli_writes_its_tables(tmp_path):
    path = synthetic_file(tmp_path)
    runs = {}
    for name, cost in (('free', '0'), ('paid', '10')):
        out = tmp_path/name
        r = run_cli('strategy', '--preds', path, '--cost-bps', cost, '--slippage-bps', cost, '--draws', '100', '--out', out)
        assert r.returncode == 0, r.stderr
        assert 'strategies' in r.stdout and 'cross-sectional' in r.stdout and 'portfolios' in r.stdout
        assert sorted(p.name for p in out.iterdir()) == sorted(['strategies.csv', 'strategies_by_year.csv', 'per_coin.csv',
                                                                'cross_section.csv', 'portfolios.csv', 'var_backtest.csv',
                                                                'equity.png',
                                                                'portfolios.png', 'summary.json'])
        runs[name] = out
    s = json.loads((runs['paid']/'summary.json').read_text())
    assert s['best']['model'] == 'good' and s['cost_bps'] == 10 and s['coins'] == 6
    free, paid = (pd.read_csv(runs[k]/'strategies.csv') for k in ('free', 'paid'))
    moves = free['turnover'] > 0
    assert moves.sum() >= 8 and (paid['ann_return'][moves] < free['ann_return'][moves]).all()
    cs = pd.read_csv(runs['paid']/'cross_section.csv').set_index(['model', 'horizon'])
    assert cs.loc[('good', 1), 'ic_mean'] > 0.3 and abs(cs.loc[('noise', 1), 'ic_mean']) < 0.1
    assert sorted(cs.reset_index()['horizon'].unique()) == [1, 7]

@needs_data
def test_strategy_cli_runs_the_backtest_on_real_coins(tmp_path):
    r = run_cli('strategy', '--coins', 'BTC,ETH,LTC,XRP,ADA', '--models', 'naive,drift', '--folds', '1', '--test-size', '90',
                '--data-dir', DATA_DIR, '--draws', '100', '--out', tmp_path/'o', timeout=300)
    assert r.returncode == 0, r.stderr
    st = pd.read_csv(tmp_path/'o'/'strategies.csv')
    assert set(st['model']) == {'-', 'naive', 'drift'} and len(st) == 11
    naive = st[(st['model'] == 'naive') & (st['strategy'] != 'vol_target')]
    assert (naive['turnover'] == 0).all()                     # the random walk's zero mean never trades on its sign

@pytest.mark.parametrize('args, words', [
    (['--preds', 'MISSING'], 'no such file'),
    (['--preds', 'GARBAGE'], 'not a readable'),
    (['--preds', 'FILE', '--models', 'good,prophet'], "model 'prophet' is not in"),
    (['--preds', 'FILE', '--cost-bps', '-3'], 'argument --cost-bps'),
    (['--preds', 'FILE', '--horizon', '30'], 'no horizon 30'),
    (['--coins', 'BTC', '--models', 'prophet'], "unknown model 'prophet'"),
])
def test_strategy_cli_refuses_bad_input_in_one_line(tmp_path, args, words):
    path = synthetic_file(tmp_path, n_days=40)
    (tmp_path/'garbage.parquet').write_bytes(b'not parquet at all')
    subst = {'FILE': str(path), 'MISSING': str(tmp_path/'nope.parquet'), 'GARBAGE': str(tmp_path/'garbage.parquet')}
    r = run_cli('strategy', *[subst.get(a, a) for a in args], '--out', tmp_path/'o')
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith('error:') and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
    assert words in r.stderr, r.stderr
    assert not (tmp_path/'o').exists()
