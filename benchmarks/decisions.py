"""Decisions from a walk-forward predictions frame: do the forecasts add value after trading costs?

Run: .venv/bin/python benchmarks/decisions.py --preds benchmarks/out/skill_predictions.parquet [--cost-bps 10 --slippage-bps 5]
Reads a predictions frame (every model in it: the ensemble and each single model), and prints:
1. the trading rules of `cryptoforecast.decisions` (long/flat and long/short on the sign of the mean, the same only when
   the 80% interval excludes zero, a 50%-a-year volatility target) on the h=1 rows, one equal-capital book per model
   and rule over the coins, after costs, against buy and hold: return, volatility, Sharpe with Lo's 95% interval, the
   deflated Sharpe ratio over every book tried, drawdown, hit rate, turnover; then the Sharpe ratio before and after
   costs side by side, and the Sharpe ratio after costs per calendar year of the origin (calm and wild years differ);
2. cross-sectional skill per model and horizon: rank IC (mean, t), hit rate against the median, top-minus-bottom
   quintile return after costs, M6-style RPS against equal probabilities;
4. the VaR/ES of each model's h=1 forecasts, backtested (breach rate, Kupiec, realised loss over ES on breaches);
3. long-only portfolios (minimum variance, risk parity, a mean-variance tilt; Ledoit-Wolf correlations fitted on
   returns realised by each weekly rebalance) against equal weight, after costs.
Stablecoins (realised volatility below 10% a year) are left out unless --keep-pegged.
Goal (for information): a rule or portfolio whose Sharpe ratio after costs beats buy and hold (or equal weight) with a
deflated Sharpe ratio above 0.95, in most test years. A forecast without that adds no tradable value.
"""
import argparse, sys, time

import pandas as pd

from cryptoforecast.decisions import (CROSS_COLUMNS, PORTFOLIO_COLUMNS, STRATEGY_COLUMNS, bps, cross_sectional_skill,
                                      pegged_coins, portfolio_table, read_predictions, strategy_returns, strategy_table,
                                      trading_rows, var_backtest)
from cryptoforecast.errors import exit_status

def show(df: pd.DataFrame, cols=None) -> str:
    cols = [c for c in (cols or df.columns) if c in df.columns]
    return df[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}")

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--preds', required=True, help='a walk-forward predictions frame (parquet)')
    ap.add_argument('--cost-bps', type=float, default=10.0)
    ap.add_argument('--slippage-bps', type=float, default=5.0)
    ap.add_argument('--draws', type=int, default=1000, help='Monte Carlo draws for the quintile probabilities')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--keep-pegged', action='store_true', help='keep the stablecoins (left out by default)')
    a = ap.parse_args()
    t0 = time.perf_counter()
    preds = read_predictions(a.preds)
    pegged = [] if a.keep_pegged else pegged_coins(preds)
    preds = preds[~preds['coin'].isin(pegged)]
    cost = bps(a.cost_bps, a.slippage_bps)
    rows = trading_rows(preds, 1)
    print(f"{a.preds}: {rows['coin'].nunique()} coins, models {', '.join(sorted(rows['model'].unique()))}, "
          f"h=1 origins {rows['origin'].min().date()} to {rows['origin'].max().date()}; "
          f"costs {a.cost_bps:g} + {a.slippage_bps:g} bps per unit of turnover; pegged coins left out: {pegged or 'none'}")
    per_origin = rows[rows['model'] == rows['model'].iloc[0]].groupby('origin').size()
    print(f"coins per origin: {per_origin.value_counts().sort_index().to_dict()}")

    t = time.perf_counter()
    net_book, gross_book = strategy_returns(rows, cost=cost), strategy_returns(rows, cost=0.0)
    net = strategy_table(net_book)
    gross = strategy_table(gross_book)
    print(f"\n1. trading rules, h=1, equal-capital books, after costs (DSR over {net.attrs['n_trials']} books tried):")
    print(show(net, STRATEGY_COLUMNS))
    both = net[['model', 'strategy', 'sharpe']].merge(gross[['model', 'strategy', 'sharpe']], on=['model', 'strategy'],
                                                     suffixes=('_net', '_gross'))
    print("\n   Sharpe before and after costs:")
    print(show(both.pivot(index='model', columns='strategy', values='sharpe_gross').reset_index().rename_axis(None, axis=1)))
    print(show(both.pivot(index='model', columns='strategy', values='sharpe_net').reset_index().rename_axis(None, axis=1)))
    years = strategy_table(net_book, by='year')
    print("\n   Sharpe after costs by year of the origin (coins trading that year in brackets):")
    coins = rows.assign(year=rows['origin'].dt.year).groupby('year')['coin'].nunique()
    wide = years.pivot_table(index=['model', 'strategy'], columns='year', values='sharpe')
    wide.columns = [f"{y} ({coins[y]})" for y in wide.columns]
    print(wide.reset_index().to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    bh = years[years['strategy'] == 'buy_hold'].set_index('year')['ann_return']
    print("   buy-and-hold return by year: " + ', '.join(f"{y}: {r:+.0%}" for y, r in bh.items()))
    t_rules = time.perf_counter() - t

    t = time.perf_counter()
    cs = cross_sectional_skill(preds, cost=cost, n_draws=a.draws, seed=a.seed)
    print("\n2. cross-sectional skill (non-overlapping origins per horizon; RPS of equal probabilities ~0.16, lower is better):")
    print(show(cs, CROSS_COLUMNS))
    t_cs = time.perf_counter() - t

    t = time.perf_counter()
    pt, series = portfolio_table(rows, 1, cost)
    print(f"\n3. long-only portfolios, rebalanced every 7 days, after costs (DSR over {pt.attrs['n_trials']} portfolios tried):")
    print(show(pt, PORTFOLIO_COLUMNS))
    by_year = series.assign(year=series['origin'].dt.year).groupby(['model', 'portfolio', 'year'])['net']
    sy = by_year.apply(lambda r: r.mean() / r.std() * 365 ** 0.5 if r.std() > 0 else float('nan')).unstack('year')
    print("\n   portfolio Sharpe after costs by year of the origin:")
    print(sy.reset_index().to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    t_pf = time.perf_counter() - t
    print("\n4. value at risk of the h=1 forecasts (analysis.model_var_es, normal or t4 tails beyond the 2.5% quantile):")
    print("   breach rate against 1 - level, Kupiec p,")
    print("   es_ratio = realised loss / forecast ES on the breach days (1 is right, above 1 a heavier tail than forecast):")
    vb = pd.concat([var_backtest(rows), var_backtest(rows, tail_df=4)]).sort_values(['model', 'level', 'tail'])
    print(show(vb.assign(kupiec_p=vb['kupiec_p'].map(lambda p: f"{p:.2g}"))))
    best = net[(net['strategy'] != 'buy_hold') & (net['sharpe'] > net.loc[net['strategy'] == 'buy_hold', 'sharpe'].iloc[0])]
    print(f"\nrules with a higher Sharpe than buy and hold after costs: "
          f"{', '.join(f'{r.model}/{r.strategy} ({r.sharpe:.2f}, dsr {r.dsr:.2f})' for r in best.itertuples()) or 'none'}")
    ew = pt.loc[pt['portfolio'] == 'equal_weight', 'sharpe'].iloc[0]
    better = pt[(pt['portfolio'] != 'equal_weight') & (pt['sharpe'] > ew)]
    print(f"portfolios with a higher Sharpe than equal weight: "
          f"{', '.join(f'{r.model}/{r.portfolio} ({r.sharpe:.2f})' for r in better.itertuples()) or 'none'}")
    print(f"\nseconds: rules {t_rules:.1f}, cross-section {t_cs:.1f}, portfolios {t_pf:.1f}, total {time.perf_counter() - t0:.1f}")

if __name__ == '__main__': sys.exit(exit_status(main))
