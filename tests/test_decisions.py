"""Decisions from forecasts on real returns and through the CLI: an oracle forecast earns a very high Sharpe ratio and a
shuffled one about nothing, costs lower every result, changing the future moves no earlier decision, and
`cryptoforecast strategy` writes each run's tables into a folder of its own, lists the books that never trade apart
from the others, or refuses bad input (a bad --out, a degenerate or non-finite predictions file) in one line with exit
code 2."""
import json, os
from pathlib import Path

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

RUN_FILES = sorted(['strategies.csv', 'strategies_by_year.csv', 'per_coin.csv', 'cross_section.csv', 'portfolios.csv',
                    'var_backtest.csv', 'equity.png', 'portfolios.png', 'summary.json'])

def run_folder_of(r, out) -> Path:
    "The one run folder under `out`, which the run's last line names."
    folders = [p for p in out.iterdir()]
    assert len(folders) == 1 and folders[0].is_dir(), folders         # nothing else, no temporary folder left behind
    assert r.stdout.strip().splitlines()[-1].endswith(str(folders[0])), r.stdout
    return folders[0]

def test_strategy_cli_writes_its_tables(tmp_path):
    path = synthetic_file(tmp_path)
    runs = {}
    for name, cost in (('free', '0'), ('paid', '10')):
        out = tmp_path/name
        r = run_cli('strategy', '--preds', path, '--cost-bps', cost, '--slippage-bps', cost, '--draws', '100', '--out', out)
        assert r.returncode == 0, r.stderr
        assert 'strategies' in r.stdout and 'cross-sectional' in r.stdout and 'portfolios' in r.stdout
        runs[name] = run_folder_of(r, out)
        assert sorted(p.name for p in runs[name].iterdir()) == RUN_FILES
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
    st = pd.read_csv(run_folder_of(r, tmp_path/'o')/'strategies.csv')
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

def test_each_strategy_run_writes_a_folder_of_its_own(tmp_path):
    path = synthetic_file(tmp_path, n_days=60)
    out, named = tmp_path/'out', []
    for _ in range(2):
        r = run_cli('strategy', '--preds', path, '--draws', '50', '--out', out)
        assert r.returncode == 0, r.stderr
        named.append(r.stdout.strip().splitlines()[-1].split()[-1])
    runs = sorted(out.iterdir())
    assert len(runs) == 2 and all(p.is_dir() and p.name.startswith('preds-') for p in runs), runs
    for run in runs: assert sorted(p.name for p in run.iterdir()) == RUN_FILES
    assert sorted(named) == sorted(map(str, runs)), (named, runs)       # each run says where it wrote

def test_books_that_never_trade_are_listed_apart(tmp_path):
    p = synthetic_predictions(n_days=80, coins=[f'C{i}' for i in range(6)], models=('good', 'zero'), skill=(0.3, 0.0))
    zero = p['model'] == 'zero'
    for c in ['mean', 'q0.025', 'q0.1', 'q0.5', 'q0.9', 'q0.975']:       # a zero mean: the sign rules never trade
        p.loc[zero, c] = p.loc[zero, c] - p.loc[zero, 'mean'] if c != 'mean' else 0.0
    p.to_parquet(tmp_path/'zero.parquet')
    r = run_cli('strategy', '--preds', tmp_path/'zero.parquet', '--draws', '50', '--out', tmp_path/'o')
    assert r.returncode == 0, r.stderr
    table = r.stdout.split('strategies (')[1].split('cross-sectional')[0]
    listed = [l for l in table.splitlines() if l.startswith('never traded: ')]
    assert len(listed) == 1, table
    never = listed[0].removeprefix('never traded: ').split(', ')
    assert {'zero/long_flat', 'zero/long_flat_80', 'zero/long_short', 'zero/long_short_80'} <= set(never), never
    rows = [l.split() for l in table.splitlines() if l.split()[:1] == ['zero']]
    assert [l[1] for l in rows] == ['vol_target'], rows               # the table holds only the books that trade
    books = [l.split() for l in table.splitlines()[2:] if l.strip() and not l.startswith('never traded')]
    assert books and not {f"{b[0]}/{b[1]}" for b in books} & set(never), books
    assert all('NaN' not in b for b in books if b[0] != '-'), books    # (buy and hold has no IR against itself)
    assert '-0.000' not in r.stdout, r.stdout
    s = json.loads((run_folder_of(r, tmp_path/'o')/'summary.json').read_text())
    assert s['never_traded'] == never, s

def degenerate(tmp_path, kind: str):
    "A predictions file that `strategy` must refuse: one row, an inf forecast or realised return, no realised row."
    p = synthetic_predictions(n_days=40, coins=[f'C{i}' for i in range(6)])
    if kind == 'one row': p = p.head(1)
    if kind == 'inf mean': p.loc[7, 'mean'] = np.inf
    if kind == 'inf quantile': p.loc[7, 'q0.9'] = np.inf
    if kind == '-inf actual': p.loc[7, 'actual'] = -np.inf
    if kind == 'nothing realised': p['actual'] = np.nan
    if kind == 'two origins': p = p[p['origin'] <= p['origin'].min() + pd.Timedelta(days=1)]
    path = tmp_path/'p.csv' if kind == 'inf csv' else tmp_path/'p.parquet'
    if kind == 'inf csv':
        p.to_csv(path, index=False)
        lines = path.read_text().splitlines()
        cells = lines[3].split(',')
        cells[4] = 'inf'                                                     # the mean column of the third row
        lines[3] = ','.join(cells)
        path.write_text('\n'.join(lines) + '\n')
    else: p.to_parquet(path)
    return path

@pytest.mark.parametrize('kind, words', [
    ('one row', 'realised forecasts at 1 origin'),
    ('two origins', 'at 2 origins'),
    ('nothing realised', 'realised forecasts at 0 origins'),
    ('inf mean', "non-finite value in column 'mean'"),
    ('inf csv', "non-finite value in column 'mean'"),
    ('inf quantile', "non-finite value in column 'q0.9'"),
    ('-inf actual', "non-finite value in column 'actual'"),
])
def test_strategy_refuses_a_degenerate_predictions_file(tmp_path, kind, words):
    r = run_cli('strategy', '--preds', degenerate(tmp_path, kind), '--draws', '50', '--out', tmp_path/'o')
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.startswith('error:') and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
    assert words in r.stderr, r.stderr
    assert not (tmp_path/'o').exists()

@pytest.mark.parametrize('out, words', [('FILE', 'is a file, not a folder'), ('FILE/sub', 'is a file, not a folder')])
def test_strategy_refuses_an_out_that_is_a_file(tmp_path, out, words):
    (tmp_path/'file').write_text('keep me')
    r = run_cli('strategy', '--preds', synthetic_file(tmp_path, n_days=40), '--out', out.replace('FILE', str(tmp_path/'file')))
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
    assert words in r.stderr and 'argument --out' in r.stderr, r.stderr
    assert (tmp_path/'file').read_text() == 'keep me'

def test_strategy_refuses_a_folder_or_an_unreadable_file_as_predictions(tmp_path):
    (tmp_path/'d.parquet').mkdir()
    r = run_cli('strategy', '--preds', tmp_path/'d.parquet', '--out', tmp_path/'o')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'is a folder, not a predictions file' in r.stderr, r.stderr
    if os.geteuid() == 0: return                                   # root reads every file: no unreadable file to make
    path = synthetic_file(tmp_path, n_days=40)
    path.chmod(0)
    r = run_cli('strategy', '--preds', path, '--out', tmp_path/'o')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'cannot read' in r.stderr, r.stderr
