"""Training cost of the deep forecasters on a real coin: seconds per epoch and per fold, and peak memory, full-size models.

By default each model is trained on BTC's walk-forward folds exactly as `benchmarks/skill.py` builds them (features
from the data directory, 5 folds of 146 test days, 90 validation days, 60 selected features, horizons 1/7/30): the
first fold (the smallest training set) and the last (the largest), each for `--epochs` epochs with no early stop, so
"seconds per fold" is what one fold of the skill run costs at that many epochs. Each model runs in its own subprocess,
so its peak resident memory (``resource.getrusage(...).ru_maxrss``; tracemalloc does not see TensorFlow's
allocations) is its own. The first epoch of a fit includes tracing the graph; later epochs are the steady cost.
`--synthetic` uses a random-walk frame of the same shape instead (no data directory needed).

    CRYPTOFORECAST_DATA_DIR=../shared/data/raw nice -n 10 .venv/bin/python benchmarks/deep_cost.py \\
        [--coin BTC] [--epochs 5] [--fold 0 -1] [--synthetic --windows 2000]
"""
from __future__ import annotations
import argparse, json, math, os, resource, subprocess, sys, time

from cryptoforecast.errors import UserError, exit_status

MODELS = ('lstm', 'transformer')

def peak_rss_mib() -> float:
    "Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def real_folds(coin: str, n_folds: int, test_size: int, seed: int) -> list:
    "The coin's walk-forward folds, built as the skill benchmark builds them (the whole universe gives the market context)."
    from cryptoforecast.backtest import coin_folds
    from cryptoforecast.config import get_config
    from cryptoforecast.data import load_universe
    universe = load_universe()
    if coin not in universe: raise UserError(f"{coin} is not in the data directory ({len(universe)} coins found)")
    folds, skipped = coin_folds(universe, [coin], get_config(seed=seed), n_folds, test_size, progress=False)
    if coin in skipped: raise UserError(f"{coin}: {skipped[coin]}")
    return folds[coin]

def synthetic_fold(windows: int, features: int, seed: int):
    "A random-walk fold shaped like real data: ~`windows` training windows, padded with noise features to `features`."
    import numpy as np, pandas as pd
    from cryptoforecast.dataset import synthetic_feature_frame, chronological_split
    frame = synthetic_feature_frame(math.ceil((windows + 59 + 30) / 0.7), seed=seed)
    noise = np.random.default_rng(seed).normal(size=(len(frame), features))
    frame = pd.concat([frame, pd.DataFrame(noise, index=frame.index, columns=[f'noise_{i}' for i in range(features)])], axis=1)
    return chronological_split(frame, n_features=features, coin='SYN')

def fit_cost(cls, fold, epochs: int, batch_size: int, seed: int) -> dict:
    "Train one full-size model on `fold` for `epochs` epochs (no early stop) and time it."
    f = cls(epochs=epochs, batch_size=batch_size, patience=epochs + 1, seed=seed)
    t0 = time.perf_counter(); f.fit(fold); fit_s = time.perf_counter() - t0
    X = fold.windows('test')[0]
    t0 = time.perf_counter(); f.predict_quantiles(X); pred_s = time.perf_counter() - t0
    return dict(params=f.model.count_params(), train_windows=len(fold.windows('train')[0]), features=len(fold.features),
                epoch_s=[round(s, 2) for s in f.history['seconds']], fit_s=round(fit_s, 2), predict_s=round(pred_s, 2),
                predict_windows=len(X))

def run_one(model: str, a) -> dict:
    "Cost figures of one model on each timed fold, and this process's peak memory."
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    from cryptoforecast.lstm import LSTMForecaster
    from cryptoforecast.transformer import TransformerForecaster
    cls = {'lstm': LSTMForecaster, 'transformer': TransformerForecaster}[model]
    if a.synthetic: folds = {'synthetic': synthetic_fold(a.windows, a.features, a.seed)}
    else:
        wf = real_folds(a.coin, a.folds, a.test_size, a.seed)
        bad = [i for i in a.fold if not -len(wf) <= i < len(wf)]
        if bad: raise UserError(f"--fold {bad}: {a.coin} has {len(wf)} folds (0..{len(wf) - 1}, or -1 for the last)")
        folds = {f"fold {i % len(wf) + 1}/{len(wf)}": wf[i] for i in a.fold}
    rss_data = peak_rss_mib()
    fits = {name: fit_cost(cls, fold, a.epochs, a.batch_size, a.seed) for name, fold in folds.items()}
    return dict(model=model, fits=fits, rss_after_data_mib=round(rss_data), peak_rss_mib=round(peak_rss_mib()), cpus=os.cpu_count())

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', nargs='+', choices=MODELS, default=list(MODELS))
    p.add_argument('--coin', default='BTC', help='the coin whose walk-forward folds are timed')
    p.add_argument('--folds', type=int, default=5, help='walk-forward folds, as in benchmarks/skill.py')
    p.add_argument('--test-size', type=int, default=146)
    p.add_argument('--fold', type=int, nargs='+', default=[0, -1], help='which folds to time (0: the smallest training set, -1: the largest)')
    p.add_argument('--synthetic', action='store_true', help='a random-walk frame of --windows x --features instead of real data')
    p.add_argument('--windows', type=int, default=2000)
    p.add_argument('--features', type=int, default=60)
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--one', choices=MODELS, help=argparse.SUPPRESS)  # internal: run one model in this process
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(a.one, a))); return 0
    data = (f"synthetic random walk, ~{a.windows} windows x {a.features} features" if a.synthetic else
            f"{a.coin}, walk-forward folds {a.fold} of {a.folds} ({a.test_size} test days each)")
    print(f"deep training cost: {data}; 60-day windows, batch {a.batch_size}, {a.epochs} epochs per fold, no early stop")
    for m in a.models:
        out = subprocess.run([sys.executable, __file__, '--one', m, *(argv if argv is not None else sys.argv[1:])],
                             capture_output=True, text=True)
        if out.returncode == 2:   # bad input: the child said why
            print(out.stderr.strip().splitlines()[-1], file=sys.stderr)
            return 2
        if out.returncode: print(f"{m}: failed\n{out.stderr[-2000:]}"); return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{m}: peak RSS {r['peak_rss_mib']} MiB (after loading data {r['rss_after_data_mib']} MiB), cpus {r['cpus']}")
        for name, f in r['fits'].items():
            steady = f['epoch_s'][1:] or f['epoch_s']
            print(f"  {name:<12} params {f['params']:,}  train windows {f['train_windows']} x {f['features']} features  "
                  f"epoch s {f['epoch_s']} (first includes tracing; steady {sum(steady) / len(steady):.1f} s/epoch)  "
                  f"per fold {f['fit_s']:.1f} s  predict {f['predict_s']} s for {f['predict_windows']} windows")
    return 0

if __name__ == '__main__': sys.exit(exit_status(main))
