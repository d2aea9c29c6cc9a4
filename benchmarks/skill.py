"""Forecast skill against the random walk on every coin of the data directory, by walk-forward validation.

Run:  CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/skill.py [--models ...] [--coins ...] [--jobs 2]

Five folds of 146 test days (730 days, the last two years of each coin), expanding training windows, an embargo
of 30 days (the largest horizon) between parts. Coins without enough history for that are listed as skipped.
Prints, per model and horizon: the median relative MAE against the random walk, the share of coins where the model
beats it (and where the one-sided Diebold-Mariano test says so at 5%), directional accuracy; then how good the
uncertainty is: the median pinball ratio to the random walk (the `naive` model's quantiles on the same rows; < 1 beats
it) and the share of coins where it is below 1, the median CRPS (approximated from the quantiles), the 80%/95% coverage
pooled over all coins' rows, and the share of coins whose 80% and 95% hits pass Kupiec's coverage test at 5% (1-day
horizon only: the hits of overlapping longer horizons are not independent). A second table splits the test origins by
calendar year (calm and wild years differ): median relative MAE and pinball ratio, pooled 80% coverage, and the random
walk's MAE of that year as its volatility; then wall time and peak memory. `--preds FILE` summarises a predictions
frame written by an earlier run (`--out`) instead of running the backtest. `--raw FILE` also writes the predictions
before the pooled calibration (validation and test rows, `calibration='raw'`); `--preds` on such a file calibrates it
first, so variants of the calibration are scored in seconds without re-running the models.

The default models include the peers a user would pick instead (`garch`, `ets`, `autoarima`, from `10_peers`):
together about 1-1.5 s per fold on BTC's history, which took the 20 eligible coins from 0.4 to 0.9-1.4 minutes of wall
time at `--jobs 2` (measured with naive and lightgbm alongside).

The deep models cost minutes per fold on a CPU (about 12 minutes per coin for five folds here). For them,
`--cache-dir DIR` keeps each coin's predictions as soon as the coin is done (each group of `--jobs` coins is then
calibrated on its own validation residuals, not pooled over all coins; global models cannot be cached), so a run that
is stopped resumes where it was (same settings only), and `--sample N` evaluates N coins drawn at random (seeded) from those with enough history.
The deep-model run of the project keeps its cache in git (`benchmarks/results/deep_skill/`, one parquet file per
finished coin), so it can be carried on across sessions and machines:

    nice -n 19 .venv/bin/python benchmarks/skill.py --models naive,lightgbm,lstm,transformer,ensemble \\
        --epochs 5 --sample 20 --jobs 1 --cache-dir benchmarks/results/deep_skill \\
        --source UNI=../shared/data/raw/cryptodatadownload/Binance_UNIUSDT_d.csv \\
        --out benchmarks/out/deep_skill_predictions.parquet

(that run drew its sample when UNI's two disagreeing files were not yet refused: `--source` keeps UNI among the
candidates, so the same 20 coins are drawn.)
"""
import json, resource, sys, time
from pathlib import Path

import numpy as np
import pandas as pd

from cryptoforecast.args import ArgParser, output_dir, output_file, positive_int, seed as seed_arg, source_arg
from cryptoforecast.atomic import write_csv
from cryptoforecast.backtest import coin_folds, format_table, run_backtest, summarize
from cryptoforecast.config import get_config
from cryptoforecast.data import load_universe
from cryptoforecast.calibration import calibrate_pooled
from cryptoforecast.errors import UserError, exit_status
from cryptoforecast.forecaster import model_class, model_entry, model_names
from cryptoforecast.metrics import score_predictions
from cryptoforecast.volatility import relative_qlike

SKILL_COLUMNS = ['model', 'horizon', 'coins', 'rel_mae', 'beats_rw', 'dm_beats_rw', 'dir_acc', 'shrink', 'pinball_ratio',
                 'pinball_beats_rw', 'crps', 'cov80', 'cov95', 'kupiec_ok80', 'kupiec_ok95']
PERIOD_COLUMNS = ['model', 'horizon', 'year', 'coins', 'rows', 'rw_mae', 'rel_mae', 'pinball_ratio', 'pinball_beats_rw', 'cov80']

def skill_summary(preds: pd.DataFrame) -> pd.DataFrame:
    "`summarize`'s medians over coins, with the pinball shares, coverage pooled over every coin's rows and Kupiec shares at h=1."
    per_coin = summarize(preds, per_coin=True)
    out = summarize(preds).set_index(['model', 'horizon'])
    by = [per_coin['model'], per_coin['horizon']]
    out['pinball_beats_rw'] = (per_coin['pinball_ratio'] < 1).where(per_coin['pinball_ratio'].notna()).groupby(by).mean()
    for level in ('80', '95'):
        ok = (per_coin[f'kupiec_p{level}'] >= 0.05).where(per_coin[f'kupiec_p{level}'].notna())
        out[f'kupiec_ok{level}'] = ok.where(per_coin['horizon'] == 1).groupby(by).mean()
    pooled = score_predictions(preds.dropna(subset=['actual']), by=('model', 'horizon')).set_index(['model', 'horizon'])
    out[['cov80', 'cov95']] = pooled[['cov80', 'cov95']]
    out['coins'] = per_coin.groupby(['model', 'horizon']).size()
    if 'shrink' in preds:  # the factor each point model's mean was shrunk by toward the random walk (median over test parts)
        out['shrink'] = preds.drop_duplicates(['coin', 'model', 'horizon', 'fold'])[['model', 'horizon', 'shrink']].groupby(
            ['model', 'horizon'])['shrink'].median()
    return out.reset_index()

def period_summary(preds: pd.DataFrame) -> pd.DataFrame:
    "Per model, horizon and calendar year of the origin: medians over coins, pooled 80% coverage and the random walk's MAE."
    p = preds.dropna(subset=['actual']).assign(year=lambda d: d['origin'].dt.year)
    per_coin = score_predictions(p, by=('coin', 'model', 'horizon', 'year'))
    keys = ['model', 'horizon', 'year']
    out = per_coin.groupby(keys)[['rel_mae', 'pinball_ratio']].median()
    out['coins'] = per_coin.groupby(keys).size()
    out['pinball_beats_rw'] = (per_coin['pinball_ratio'] < 1).where(per_coin['pinball_ratio'].notna()).groupby(
        [per_coin[k] for k in keys]).mean()
    pooled = score_predictions(p, by=keys).set_index(keys)
    out['rows'], out['cov80'] = pooled['n'], pooled['cov80']
    rows = p.drop_duplicates(['coin', 'origin', 'horizon'] + (['fold'] if 'fold' in p.columns else []))
    rw = rows['actual'].abs().groupby([rows['horizon'], rows['year']]).mean().rename('rw_mae')
    return out.reset_index().join(rw, on=['horizon', 'year'])

def sigma_qlike(preds: pd.DataFrame, baseline: str = 'garch') -> pd.DataFrame:
    "QLIKE of each model's own `sigma` against the squared h-day return, relative to `baseline`'s, median over coins per horizon."
    rows = preds.dropna(subset=['actual', 'sigma']).rename(columns={'model': 'estimator'})
    if baseline not in set(rows['estimator']): return pd.DataFrame()
    return relative_qlike(rows, baseline, by=['horizon']).rename(columns={'estimator': 'model'})

def write_tables(preds: pd.DataFrame, folder) -> None:
    "The summary, the calendar-year split and the sigma QLIKE as CSV files in `folder`."
    Path(folder).mkdir(parents=True, exist_ok=True)
    for name, table in (('skill.csv', skill_summary(preds)), ('skill_by_year.csv', period_summary(preds)),
                        ('sigma_qlike.csv', sigma_qlike(preds))):
        write_csv(table, Path(folder) / name, index=False)
    print(f"tables written to {folder}: skill.csv, skill_by_year.csv, sigma_qlike.csv")

def eligible(universe: dict, coins, a) -> tuple[list, dict]:
    "Coins with enough history for the folds, and why the others are skipped."
    folds, skipped = coin_folds(universe, coins, get_config(seed=a.seed), a.folds, a.test_size)
    return sorted(folds), skipped

def cached_backtest(universe: dict, coins, models, kw, a) -> pd.DataFrame:
    "Predictions coin by coin (`a.jobs` coins at a time), each kept in `a.cache_dir` and reused by a rerun."
    from tqdm.auto import tqdm
    cache = Path(a.cache_dir); cache.mkdir(parents=True, exist_ok=True)
    settings = dict(models=models, folds=a.folds, test_size=a.test_size, seed=a.seed, epochs=a.epochs)
    meta = cache/'settings.json'
    if meta.exists() and json.loads(meta.read_text()) != settings:
        raise UserError(f"{cache} holds a run with other settings ({meta.read_text().strip()}); use another --cache-dir")
    meta.write_text(json.dumps(settings))
    todo = [c for c in coins if not (cache/f"{c}.parquet").exists()]
    print(f"{len(coins) - len(todo)} of {len(coins)} coins already in {cache}", flush=True)
    if a.cached_only:
        if len(todo) == len(coins): raise UserError(f"no finished coin in {cache} yet")
        print(f"--cached-only: summarising those; not run yet: {', '.join(todo) or 'none'}", flush=True)
        coins, todo = [c for c in coins if c not in todo], []
    for i in tqdm(range(0, len(todo), a.jobs), desc='coin groups', unit='group', disable=None):   # a terminal only
        group = todo[i:i + a.jobs]
        preds, _ = run_backtest(group, models, None, a.folds, a.test_size, seed=a.seed, jobs=a.jobs, model_kwargs=kw,
                                universe=universe)   # its bars: each coin's models and epochs (with --jobs 1)
        for c in group: preds[preds['coin'] == c].to_parquet(cache/f"{c}.parquet")
    return pd.concat([pd.read_parquet(cache/f"{c}.parquet") for c in coins], ignore_index=True)

def main():
    "Run the benchmark (or, with `--preds`, summarise a saved frame) and print its tables; bad input is a `UserError`."
    p = ArgParser(prog='benchmarks/skill.py', description=__doc__.splitlines()[0])   # a bad argument: one line, exit 2
    p.add_argument('--models', default='naive,drift,garch,ets,autoarima,lightgbm,lightgbm_global')
    p.add_argument('--coins', default=None, help='comma-separated (default: all)')
    p.add_argument('--sample', type=positive_int, default=None, help='evaluate N coins drawn at random (seeded) from the eligible ones')
    p.add_argument('--folds', type=positive_int, default=5)
    p.add_argument('--test-size', type=positive_int, default=146)
    p.add_argument('--jobs', type=positive_int, default=2)
    p.add_argument('--seed', type=seed_arg, default=42)
    p.add_argument('--epochs', type=positive_int, default=None)
    p.add_argument('--coin-embedding', action='store_true', help='global deep models also read a learned code of each training coin')
    p.add_argument('--cache-dir', type=output_dir, default=None, help="keep each coin's predictions here; a rerun with the same settings resumes")
    p.add_argument('--out', type=output_file, default='benchmarks/out/skill_predictions.parquet')
    p.add_argument('--cached-only', action='store_true', help='summarise the coins already in --cache-dir; run nothing')
    p.add_argument('--source', action='append', type=source_arg, metavar='COIN=FILE',
                   help='use FILE for COIN where two files of the coin disagree (such coins are left out otherwise)')
    p.add_argument('--preds', default=None, help='summarise this predictions frame (parquet, from --out or --raw) instead of running')
    p.add_argument('--raw', type=output_file, default=None, help='also write the uncalibrated validation and test predictions here (parquet)')
    p.add_argument('--tables', type=output_dir, default=None,
                   help="also write the tables (and each model's sigma QLIKE relative to garch's) as CSV into this folder")
    a = p.parse_args()
    if a.preds:
        try: preds = pd.read_parquet(a.preds)
        except (OSError, ValueError) as e: raise UserError(f"--preds {a.preds}: cannot read it as parquet ({e})")
        if 'part' in preds: preds = calibrate_pooled(preds, [m for m in preds['model'].unique() if model_class(m).calibrated])
        print(format_table(skill_summary(preds), SKILL_COLUMNS))
        print('\nby calendar year of the origin (rw_mae: mean |actual|, the random walk\'s MAE, i.e. how wild the year was):')
        print(format_table(period_summary(preds), PERIOD_COLUMNS))
        if a.tables: write_tables(preds, a.tables)
        return
    models = a.models.split(',')
    if a.cached_only and not a.cache_dir: raise UserError('--cached-only needs --cache-dir')
    across = [m for m in models if model_entry(m).is_global]
    if a.cache_dir and across: raise UserError(f"{', '.join(across)} fitted across coins: cannot be cached per coin")
    if a.cache_dir and a.raw: raise UserError('--raw cannot be used with --cache-dir (the cache holds calibrated rows)')
    kw = {m: {'epochs': a.epochs} for m in model_names(needs_windows=True) if a.epochs}
    if a.coin_embedding:
        for m in model_names(needs_windows=True, is_global=True): kw[m] = {**kw.get(m, {}), 'coin_embedding': True}
    if kw and 'ensemble' in models: kw['ensemble'] = {'member_kwargs': dict(kw)}
    t0 = time.time()
    universe = load_universe(sources=dict(a.source or []))
    coins = [c.upper() for c in a.coins.split(',')] if a.coins else sorted(universe)
    calibration = 'raw' if a.raw else 'pooled'
    if a.sample or a.cache_dir:
        coins, skipped = eligible(universe, coins, a)
        if a.sample and a.sample < len(coins):
            coins = sorted(np.random.default_rng(a.seed).choice(coins, a.sample, replace=False).tolist())
        print(f"coins: {', '.join(coins)}", flush=True)
        preds = cached_backtest(universe, coins, models, kw, a) if a.cache_dir else \
            run_backtest(coins, models, None, a.folds, a.test_size, seed=a.seed, jobs=a.jobs, model_kwargs=kw, universe=universe,
                         calibration=calibration)[0]
    else:
        preds, skipped = run_backtest(coins, models, None, a.folds, a.test_size, seed=a.seed, jobs=a.jobs, model_kwargs=kw,
                                      universe=universe, calibration=calibration)
    if a.raw:
        Path(a.raw).parent.mkdir(parents=True, exist_ok=True)
        preds.to_parquet(a.raw)
        preds = calibrate_pooled(preds, [m for m in models if model_class(m).calibrated])
    wall = time.time() - t0
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    preds.to_parquet(a.out)
    span = preds.groupby('coin')['origin'].agg(['min', 'max'])
    print(f"coins evaluated: {preds['coin'].nunique()}   skipped (too little history for {a.folds} folds x {a.test_size} days): {len(skipped)}")
    print(f"test span per coin: median {int((span['max'] - span['min']).dt.days.median()) + 1} days; folds: {a.folds}; models: {a.models}"
          + (f"; epochs: {a.epochs}" if a.epochs else ''))
    print(format_table(skill_summary(preds), SKILL_COLUMNS))
    print("\nby calendar year of the origin (rw_mae: mean |actual|, the random walk's MAE, i.e. how wild the year was):")
    print(format_table(period_summary(preds), PERIOD_COLUMNS))
    print(f"\nwall time: {wall/60:.1f} min   peak memory (max RSS of this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MiB"
          f"   children: {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024:.0f} MiB")
    print("skipped: " + ', '.join(sorted(skipped)))
    if a.tables: write_tables(preds, a.tables)

if __name__ == '__main__': sys.exit(exit_status(main))
