"""How much better the volatility forecast must be for the intervals to reach a pinball goal: a ceiling study.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/sigma_ceiling.py --raw FILE [--model ensemble]
     [--weights 0,0.05,0.1,0.2,0.5,1] [--source UNI=...]

FILE is the uncalibrated frame `benchmarks/skill.py --raw FILE` writes (validation and test rows of every model). For
each weight w, every row's volatility forecast sigma is replaced by sigma^(1-w) x oracle^w, where the oracle is the
square root of the Parkinson variances summed over the h days after the origin: the range the coin will actually
trade in. It knows the future by design, so no forecast can use it; w = 0 is the project's own forecast and w = 1 a
perfect range forecast. The rows are then calibrated exactly as `skill.py` does (`calibrate_pooled`) and scored: the
median over coins of QLIKE relative to the 30-day rolling variance (against the squared h-day return, as
`benchmarks/volatility.py` scores), and the model's median pinball ratio to the random walk, the share of coins where
it is below 1, and the pooled 80% / 95% coverage. Reading across the weights gives the QLIKE a forecast would need for
a pinball goal. Rows whose h days after the origin go beyond the data keep their own sigma.
"""
import argparse, sys, time

import numpy as np
import pandas as pd

from cryptoforecast.args import source_arg
from cryptoforecast.calibration import calibrate_pooled
from cryptoforecast.data import load_universe
from cryptoforecast.errors import UserError, exit_status
from cryptoforecast.volatility import daily_returns, future_log_rv, parkinson_variance, relative_qlike
from skill import skill_summary

def coin_sigmas(ohlcv: pd.DataFrame, horizons) -> pd.DataFrame:
    "Per date and horizon: the oracle (root of the next h days' summed Parkinson variance) and the 30-day rolling sigma."
    rv, r = parkinson_variance(ohlcv), daily_returns(ohlcv)
    out = []
    for h in horizons:
        oracle = np.sqrt(int(h) * np.exp(future_log_rv(rv, h).to_numpy()))
        out.append(pd.DataFrame({'origin': ohlcv.index, 'horizon': int(h), 'oracle': oracle,
                                 'roll30': np.sqrt(int(h) * r.rolling(30).var().to_numpy())}))
    return pd.concat(out, ignore_index=True)

def qlike_ratio(test: pd.DataFrame) -> pd.DataFrame:
    "`relative_qlike` of the rows' `sigma` against their 30-day rolling sigma, per horizon: the median ratio and the share below 1."
    cols = ['coin', 'origin', 'horizon', 'actual']
    tidy = pd.concat([test[cols + ['sigma']].assign(estimator='model'),
                      test[cols + ['roll30']].rename(columns={'roll30': 'sigma'}).assign(estimator='roll30')], ignore_index=True)
    t = relative_qlike(tidy, 'roll30', by=['horizon']).query("estimator == 'model'").set_index('horizon')
    return t[['median_ratio', 'beats_base']].rename(columns={'median_ratio': 'qlike_ratio', 'beats_base': 'qlike_beats_roll30'})

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--raw', required=True, help='the uncalibrated predictions of `benchmarks/skill.py --raw FILE` (parquet)')
    ap.add_argument('--model', default='ensemble', help='the calibrated model to score (default: ensemble)')
    ap.add_argument('--weights', default='0,0.05,0.1,0.2,0.5,1', help="comma-separated weights of the oracle, each in [0, 1]")
    ap.add_argument('--source', action='append', type=source_arg, metavar='COIN=FILE', help="as `skill.py`'s --source")
    a = ap.parse_args()
    try: weights = [float(w) for w in a.weights.split(',')]
    except ValueError: raise UserError(f"--weights {a.weights!r}: expected comma-separated numbers in [0, 1]")
    if not weights or not all(0 <= w <= 1 for w in weights): raise UserError(f"--weights {a.weights!r}: each must be in [0, 1]")
    t0 = time.perf_counter()
    try: raw = pd.read_parquet(a.raw)
    except (OSError, ValueError) as e: raise UserError(f"--raw {a.raw}: cannot read it as parquet ({e})")
    need = {'coin', 'origin', 'horizon', 'model', 'part', 'sigma', 'point', 'actual', 'fold'} - set(raw.columns)
    if need: raise UserError(f"--raw {a.raw} lacks column(s) {sorted(need)}: write it with `benchmarks/skill.py --raw`")
    for m in (a.model, 'naive'):
        if m not in set(raw['model']):
            raise UserError(f"--raw {a.raw} has no rows of model {m!r}; it has {sorted(raw['model'].unique())}")
    raw = raw[raw['model'].isin([a.model, 'naive'])]
    universe = load_universe(symbols=sorted(raw['coin'].unique()), sources=dict(a.source or []))
    horizons = sorted(raw['horizon'].unique())
    sig = pd.concat([coin_sigmas(universe[c], horizons).assign(coin=c) for c in sorted(universe)], ignore_index=True)
    sig['origin'] = sig['origin'].astype(raw['origin'].dtype)
    raw = raw.merge(sig, on=['coin', 'origin', 'horizon'], how='left')
    known = raw['oracle'].notna() & raw['actual'].notna()
    print(f"{raw['coin'].nunique()} coins, model {a.model}; the oracle is known on {known.mean():.1%} of the rows with an outcome")
    rows = []
    for w in weights:
        p = raw.copy()
        mixed = p['sigma'] ** (1 - w) * p['oracle'] ** w
        p['sigma'] = mixed.where(p['oracle'].notna() & (p['oracle'] > 0), p['sigma'])
        test = calibrate_pooled(p.drop(columns=['oracle', 'roll30']), [a.model])
        skill = skill_summary(test).set_index(['model', 'horizon']).loc[a.model]
        vol = qlike_ratio(p[(p['part'] == 'test') & (p['model'] == a.model)])
        rows.append(skill[['pinball_ratio', 'pinball_beats_rw', 'cov80', 'cov95']].join(vol).assign(weight=w).reset_index())
    table = pd.concat(rows, ignore_index=True)[['weight', 'horizon', 'qlike_ratio', 'qlike_beats_roll30', 'pinball_ratio',
                                                'pinball_beats_rw', 'cov80', 'cov95']]
    print("\nOracle weight w, per horizon: median QLIKE ratio to roll30 (and the share of coins below 1); the calibrated model's\n"
          "median pinball ratio to the random walk (and the share below 1); pooled coverage of the 80% and 95% intervals")
    print(table.round(3).to_string(index=False))
    print(f"\nwall time {time.perf_counter() - t0:.1f}s")

if __name__ == '__main__': sys.exit(exit_status(main))
