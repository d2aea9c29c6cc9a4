"""Volatility forecasts on the whole universe: QLIKE of every estimator relative to the 30-day rolling variance.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/volatility.py [--coins BTC,ETH]
Every coin with enough history for the backtest's walk-forward folds (5 folds x 146 test days, its validation size
and fewest training days); each estimator is fitted on each fold's training part and scored on its test origins
against the squared h-day log return (`project`, the pooled HAR with the weekday-adjusted combination, pulled toward
the coin's last-year variance at 7 and 30 days; `learned`, the global LightGBM of the log range variance; `stack`, all of
them combined in log space with weights fitted on pooled validation QLIKE, the default sigma of the point models). Prints, per
horizon: the median over coins of QLIKE / the baseline's QLIKE (below 1 is better), the share of coins where the
estimator beats the baseline, and the pooled QLIKE; then the same split by fold and by the year of the test origin;
then the seconds each estimator took and the wall time.
Goal (for information): the best estimator's median ratio <= 0.90, 0.92, 0.85 at 1, 7, 30 days, below 1 on >= 90% of coins.
"""
import argparse, sys, time, warnings
from pathlib import Path

import pandas as pd

from cryptoforecast.backtest import MIN_TRAIN, VAL_SIZE
from cryptoforecast.config import get_config
from cryptoforecast.data import load_universe
from cryptoforecast.atomic import write_csv
from cryptoforecast.dataset import walk_forward
from cryptoforecast.errors import exit_status
from cryptoforecast.volatility import ESTIMATORS, POOLED_MODELS, forecast_folds, relative_qlike, score_volatility, volatility_frame

N_FOLDS, TEST_SIZE = 5, 146

def universe_folds(universe: dict, cfg) -> tuple[dict, dict]:
    "Walk-forward folds of every coin long enough for them; the others with the reason."
    folds, skipped = {}, {}
    for coin, ohlcv in sorted(universe.items()):
        try:
            frame = volatility_frame(ohlcv, cfg.horizons)
            folds[coin] = walk_forward(frame, cfg, n_folds=N_FOLDS, test_size=TEST_SIZE, val_size=VAL_SIZE,
                                       min_train=MIN_TRAIN, n_features=1)
        except ValueError as e: skipped[coin] = str(e)
    return folds, skipped

def table(preds: pd.DataFrame, by) -> str:
    "The relative-QLIKE table, one row per estimator and `by`, rounded."
    t = relative_qlike(preds, 'roll30', by=by)
    return t.round({'median_ratio': 3, 'beats_base': 2, 'pooled_qlike': 3}).to_string(index=False)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--coins', default=None, help='comma-separated coins (default: every coin with enough history)')
    ap.add_argument('--results', default=None, help='also write the tables (per horizon, by year) as CSV files into this folder')
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = get_config()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe(symbols=args.coins.split(',') if args.coins else None)
    folds, skipped = universe_folds(universe, cfg)
    t_folds = time.perf_counter()
    print(f"{len(folds)} coins with {N_FOLDS} folds x {TEST_SIZE} test days ({len(skipped)} too short); "
          f"loading and folds {t_folds - t0:.1f}s")
    parts, seconds = [], {}
    for name in ESTIMATORS:
        t = time.perf_counter()
        parts.append(forecast_folds(folds, estimators=(name,), pooled=False))
        seconds[name] = time.perf_counter() - t
    t = time.perf_counter()
    parts.append(forecast_folds(folds, estimators=(), pooled=True))
    seconds[' and '.join(POOLED_MODELS)] = time.perf_counter() - t
    preds = pd.concat(parts, ignore_index=True)
    preds['year'] = preds['origin'].dt.year
    print("\nQLIKE relative to the 30-day rolling variance, test origins of every fold, per horizon")
    print(table(preds, ['horizon']))
    overall = relative_qlike(preds, 'roll30', by=['horizon'])
    best = overall[overall.estimator != 'roll30'].sort_values('median_ratio').groupby('horizon').head(1).sort_values('horizon')
    goal = {1: 0.90, 7: 0.92, 30: 0.85}
    lines = [f"h={r.horizon} {r.estimator} {r.median_ratio:.3f} (goal <= {goal.get(r.horizon, float('nan')):.2f}), "
             f"beats roll30 on {r.beats_base:.0%} of coins (goal >= 90%)" for r in best.itertuples()]
    print("best per horizon: " + '; '.join(lines))
    print("\nMSE of the variance, pooled over coins and folds, relative to roll30's (dominated by the wildest days)")
    mse = score_volatility(preds).pivot(index='estimator', columns='horizon', values='mse')
    print((mse / mse.loc['roll30']).round(3).to_string())
    print("\nBy fold (median ratio over coins; share of coins beating roll30). Coins' histories end on different dates,"
          "\nso a fold number is not one calendar period; the split by year below is.")
    t = relative_qlike(preds, 'roll30', by=['horizon', 'fold'])
    wide = t.pivot_table(index=['estimator', 'fold'], columns='horizon', values=['median_ratio', 'beats_base'])
    print(wide.round(2).to_string())
    print("\nBy year of the test origin (median ratio over coins; share of coins beating roll30)")
    t = relative_qlike(preds, 'roll30', by=['horizon', 'year'])
    wide = t.pivot_table(index=['estimator', 'year'], columns='horizon', values=['median_ratio', 'beats_base', 'coins'])
    print(wide.round(2).to_string())
    if args.results:
        Path(args.results).mkdir(parents=True, exist_ok=True)
        for name, by in (('volatility_qlike.csv', ['horizon']), ('volatility_qlike_by_year.csv', ['horizon', 'year'])):
            write_csv(relative_qlike(preds, 'roll30', by=by), f"{args.results}/{name}", index=False)
        print(f"\ntables written to {args.results}/volatility_qlike.csv and volatility_qlike_by_year.csv")
    print("\nseconds per estimator (all coins and folds): " + ', '.join(f"{k} {v:.1f}" for k, v in seconds.items()))
    print(f"wall time {time.perf_counter() - t0:.1f}s")

if __name__ == '__main__': sys.exit(exit_status(main))
