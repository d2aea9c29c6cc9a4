"""Zero-shot skill: the global models fitted on a seeded random four fifths of the coins, scored on the fifth they never saw.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/zero_shot.py [--models naive,garch,lightgbm_global]

Every coin with enough history for 5 folds x 146 test days; a seeded random fifth is left out of the global models'
training (`backtest --train-coins`), and every coin is evaluated. Prints the skill table (median relative MAE, pinball
ratio to the random walk, coverage) of the left-out coins and of the coins in training, side by side: the gap is the
price of never having seen a coin. Per-coin models and the peers are fitted on each coin itself, so they are the same
in both groups; they are there as the yardstick.
"""
import argparse, resource, sys, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from skill import PERIOD_COLUMNS, SKILL_COLUMNS, period_summary, skill_summary
from cryptoforecast.args import source_arg
from cryptoforecast.backtest import coin_folds, format_table, run_backtest
from cryptoforecast.config import get_config
from cryptoforecast.data import load_universe
from cryptoforecast.errors import exit_status
from cryptoforecast.forecaster import model_entry, model_names

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', default='naive,garch,lightgbm_global')
    ap.add_argument('--left-out', type=float, default=0.2, help='share of coins left out of the global models (default 0.2)')
    ap.add_argument('--seed', type=int, default=42)
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--epochs', type=int, default=5, help='epochs of the deep models (default 5)')
    ap.add_argument('--source', action='append', type=source_arg, metavar='COIN=FILE')
    ap.add_argument('--out', default='benchmarks/out/zero_shot_predictions.parquet')
    a = ap.parse_args()
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe(sources=dict(a.source or []))
    folds, _ = coin_folds(universe, sorted(universe), get_config(seed=a.seed), 5, 146, progress=False)
    coins = sorted(folds)
    del folds
    rng = np.random.default_rng(a.seed)
    left = sorted(rng.choice(coins, max(1, round(a.left_out * len(coins))), replace=False).tolist())
    train = [c for c in coins if c not in left]
    print(f"{len(coins)} coins; left out of the global models' training ({len(left)}): {', '.join(left)}", flush=True)
    models = a.models.split(',')
    deep = {m: {'epochs': a.epochs} for m in model_names(needs_windows=True)}
    kw = {**deep, **{e: {'member_kwargs': deep} for e in models if model_entry(e).is_ensemble}}
    timings = {}
    preds, skipped = run_backtest(coins, models, seed=a.seed, jobs=a.jobs, universe=universe, train_coins=train,
                                  progress=False, model_kwargs=kw, timings=timings)
    for what, why in skipped.items(): print(f"skipped {what}: {why}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    preds.to_parquet(a.out)
    for label, group in (('left out (never seen by the global models)', left), ('in training', train)):
        print(f"\n{label}: {len(group)} coins")
        print(format_table(skill_summary(preds[preds['coin'].isin(group)]), SKILL_COLUMNS))
    print('\nevery coin, by calendar year of the origin (calm and wild years disagree):')
    print(format_table(period_summary(preds), PERIOD_COLUMNS))
    print('\nwall time per stage: ' + ', '.join(f"{k} {v / 60:.1f} min" for k, v in timings.items()))
    mib = lambda who: resource.getrusage(who).ru_maxrss / 1024
    print(f"peak RSS: this process {mib(resource.RUSAGE_SELF):.0f} MiB, largest worker {mib(resource.RUSAGE_CHILDREN):.0f} MiB")
    print(f"wall time {(time.time() - t0) / 60:.1f} min")

if __name__ == '__main__': sys.exit(exit_status(main))
