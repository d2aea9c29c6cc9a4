"""Forecast skill against the random walk on every coin of the data directory, by walk-forward validation.

Run:  CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/skill.py [--models ...] [--coins ...] [--jobs 2]

Five folds of 146 test days (730 days, the last two years of each coin), expanding training windows, an embargo
of 30 days (the largest horizon) between parts. Coins without enough history for that are listed as skipped.
Prints, per model and horizon: the median relative MAE against the random walk, the share of coins where the model
beats it (and where the one-sided Diebold-Mariano test says so at 5%), directional accuracy and 80%/95% coverage;
then wall time and peak memory.
"""
import argparse, resource, sys, time
from pathlib import Path

from cryptoforecast.backtest import format_table, run_backtest, summarize

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--models', default='naive,drift,lightgbm,lightgbm_global')
    p.add_argument('--coins', default=None, help='comma-separated (default: all)')
    p.add_argument('--folds', type=int, default=5)
    p.add_argument('--test-size', type=int, default=146)
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--seed', type=int, default=42)
    p.add_argument('--epochs', type=int, default=None)
    p.add_argument('--out', default='benchmarks/out/skill_predictions.parquet')
    a = p.parse_args()
    models = a.models.split(',')
    kw = {m: {'epochs': a.epochs} for m in ('lstm', 'transformer') if a.epochs}
    t0 = time.time()
    preds, skipped = run_backtest(a.coins.split(',') if a.coins else None, models, None, a.folds, a.test_size,
                                  seed=a.seed, jobs=a.jobs, model_kwargs=kw)
    wall = time.time() - t0
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    preds.to_parquet(a.out)
    span = preds.groupby('coin')['origin'].agg(['min', 'max'])
    print(f"coins evaluated: {preds['coin'].nunique()}   skipped (too little history for {a.folds} folds x {a.test_size} days): {len(skipped)}")
    print(f"test span per coin: median {int((span['max'] - span['min']).dt.days.median()) + 1} days; folds: {a.folds}; models: {a.models}")
    print(format_table(summarize(preds)))
    print(f"\nwall time: {wall/60:.1f} min   peak memory (max RSS of this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MiB"
          f"   children: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024:.0f} MiB")
    print("skipped: " + ', '.join(sorted(skipped)))
