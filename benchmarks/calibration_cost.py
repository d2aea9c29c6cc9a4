"""What the volatility models and the calibration cost inside a LightGBM walk-forward.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/calibration_cost.py [--coins N] [--models lightgbm]

Runs the backtest's walk-forward (5 folds x 146 test days, one process so every second is counted here) on the first
N eligible coins and times, inside it: the HAR pooled across coins at every training end (`pool_volatility`), fitting the
fold's volatility model (`fold_volatility`: EWMA, GARCH-t and HAR on the training part with weekday factors, and the
pooled HAR, once per fold), evaluating the volatility forecasts at the origins (`fold_sigma`), and the pooled
calibration of the test parts (`calibrate_pooled`). Prints each as seconds and as a share of the wall time.
Goal (for information): the volatility models add at most 25% to LightGBM's walk-forward wall time.
"""
import argparse, sys, time, warnings
from collections import defaultdict

import cryptoforecast.backtest as backtest
import cryptoforecast.forecaster as forecaster
from cryptoforecast.args import positive_int
from cryptoforecast.config import get_config
from cryptoforecast.data import load_universe
from cryptoforecast.errors import exit_status

SECONDS = defaultdict(float)

def timed(module, name: str, label: str):
    "Replace `module.name` by a wrapper that adds its run time to `SECONDS[label]`."
    fn = getattr(module, name)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try: return fn(*args, **kwargs)
        finally: SECONDS[label] += time.perf_counter() - t
    setattr(module, name, wrapper)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--coins', type=positive_int, default=20, help='the first N coins with enough history (default 20)')
    ap.add_argument('--models', default='lightgbm')
    a = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe()
    folds, _ = backtest.coin_folds(universe, sorted(universe), get_config(), 5, 146, progress=False)
    coins = sorted(folds)[:a.coins]
    del folds
    fit_vol = forecaster.fold_volatility
    def fitting(fold):   # only the first call per fold fits; the others return the fitted estimator
        fresh = fold.__dict__.get('_volatility') is None
        t = time.perf_counter()
        out = fit_vol(fold)
        if fresh: SECONDS['volatility fit'] += time.perf_counter() - t
        return out
    forecaster.fold_volatility = fitting
    timed(forecaster, 'fold_sigma', 'volatility forecasts')
    timed(backtest, 'pool_volatility', 'pooled HAR fits')
    timed(backtest, 'calibrate_pooled', 'pooled calibration')
    t0 = time.perf_counter()
    preds, _ = backtest.run_backtest(coins, a.models.split(','), jobs=1, universe=universe, progress=False)
    wall = time.perf_counter() - t0
    print(f"{len(coins)} coins x 5 folds, models {a.models}, one process: wall time {wall:.1f}s, {len(preds)} test rows")
    vol = SECONDS['pooled HAR fits'] + SECONDS['volatility fit'] + SECONDS['volatility forecasts']
    for label, s in [*SECONDS.items(), ('volatility models, in all', vol)]:
        print(f"  {label:<28} {s:7.1f}s  {s / wall:6.1%} of the wall time, {s / max(wall - vol, 1e-9):6.1%} added to the rest")

if __name__ == '__main__': sys.exit(exit_status(main))
