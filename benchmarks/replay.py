"""The production loop replayed over a past period of real data, with the clock set to each day.

Run: CRYPTOFORECAST_DATA_DIR=../shared/data/raw .venv/bin/python benchmarks/replay.py [--coin BTC] [--start 2025-10-01]
     [--days 120] [--retrain-every 30] [--out benchmarks/out/replay] [--plant-vol-after N --vol-factor 3]
Trains a small model (naive, drift, LightGBM) on the data known on the day before --start into a fresh artifacts folder
(its own MLflow store), then day by day: forecast with champion and challenger into the forecast store, realise,
monitor, and every --retrain-every days retrain as challenger and try a promotion (one-sided DM on shared realised
forecasts). Prints the daily log (forecasts stored, realised forecasts, alerts, champion moves), the last monitor
table and the seconds per simulated day. Nothing after a simulated day is read on that day. With `--plant-vol-after N`
the coin's daily log returns from the N-th replayed day on are multiplied by `--vol-factor` (prices rebuilt from them,
high and low scaled around the close): a planted volatility drift, and the first day the monitor flags it is printed.
"""
import argparse, os, sys, time, warnings

import pandas as pd

from cryptoforecast import live
from cryptoforecast.data import load_universe
from cryptoforecast.errors import exit_status
from cryptoforecast.tracking import setup_mlflow


def alert_kinds(alerts: str) -> set:
    "The checks named in one day's alerts ('challenger/h1:drift;champion/h7:cov95,volatility' -> {'drift', 'cov95', 'volatility'})."
    return {k for part in alerts.split(';') if ':' in part for k in part.split(':', 1)[1].split(',') if k}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--coin', default='BTC')
    ap.add_argument('--start', default='2025-10-01')
    ap.add_argument('--days', type=int, default=120)
    ap.add_argument('--retrain-every', type=int, default=30)
    ap.add_argument('--out', default='benchmarks/out/replay')
    ap.add_argument('--plant-vol-after', type=int, default=None, help='multiply the returns from this replayed day on')
    ap.add_argument('--vol-factor', type=float, default=3.0)
    a = ap.parse_args()
    for k in ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI'): os.environ.pop(k, None)
    art = os.path.abspath(os.path.join(a.out, pd.Timestamp.now(tz='UTC').strftime('%Y%m%d-%H%M%S')))
    setup_mlflow(artifacts_dir=art)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        universe = load_universe()
    first = live.as_of_day(a.start)
    planted = None
    if a.plant_vol_after is not None:
        planted = first + pd.Timedelta(days=a.plant_vol_after)
        universe[a.coin] = live.plant_volatility(universe[a.coin], planted, a.vol_factor)
        print(f"planted: {a.coin}'s daily returns x {a.vol_factor:g} from {planted.date()} on")
    t0 = time.time()
    r = live.retrain(a.coin, universe, first - pd.Timedelta(days=1), art)
    print(f"initial model v{r['version']} trained on data up to {r['data_last']} in {time.time() - t0:.0f} s")
    t0 = time.time()
    log = live.replay(a.coin, first, a.days, universe, art, retrain_every=a.retrain_every or None, progress=True)
    per_day = (time.time() - t0) / a.days
    with pd.option_context('display.width', 200, 'display.max_colwidth', 80):
        print(log.to_string(index=False))
        last = first + pd.Timedelta(days=a.days - 1)
        table = live.monitor(universe, live.store_path(art), [a.coin], last, 60)
        cols = ['alias', 'horizon', 'version', 'n', 'rel_mae', 'exp_rel_mae', 'dm_p_worse', 'pinball_ratio', 'cov80', 'cov95',
                'pit_ks_p', 'psi', 'vol_ratio', 'alerts']
        print(f"\nmonitor as of {last.date()}:\n" + table[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    kinds = log['alerts'].map(alert_kinds)
    if planted is not None:
        flagged = log[kinds.map(lambda k: 'volatility' in k) & (log['day'] >= planted)]
        when = f"first flagged on {flagged['day'].iloc[0].date()}, {(flagged['day'].iloc[0] - planted).days} days after" \
            if len(flagged) else 'never flagged'
        print(f"\nplanted volatility from {planted.date()}: the volatility check {when}")
    counts = {k: int(kinds.map(lambda ks, k=k: k in ks).sum()) for k in sorted(set().union(*kinds))}
    print(f"days with an alert: {int((log['alerts'] != '').sum())} of {len(log)}"
          + (f" (days per check: {', '.join(f'{k} {n}' for k, n in counts.items())})" if counts else ''))
    print(f"\n{per_day:.2f} s per simulated day (retraining included); artifacts in {art}")


if __name__ == '__main__': sys.exit(exit_status(main))
