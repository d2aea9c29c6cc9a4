"""Training cost of the deep forecasters: seconds per epoch and peak memory, full-size models.

Each model is trained in its own subprocess on a synthetic random-walk fold (`cryptoforecast.dataset`, padded
with noise features) shaped like real data
(~2000 training windows x 60 days x 60 selected features, horizons 1/7/30), so its peak resident memory
(``resource.getrusage(...).ru_maxrss``; tracemalloc does not see TensorFlow's allocations) is its own.
The first epoch includes tracing the graph; later epochs are the steady cost.

    nice -n 10 .venv/bin/python benchmarks/deep_cost.py [--windows 2000] [--features 60] [--epochs 2]
"""
from __future__ import annotations
import argparse, json, math, os, resource, subprocess, sys, time

MODELS = ('lstm', 'transformer')

def peak_rss_mib() -> float:
    "Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def run_one(model: str, windows: int, features: int, epochs: int, batch_size: int, seed: int) -> dict:
    "Train one full-size model for `epochs` epochs (no early stop) and return its cost figures."
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    import numpy as np, pandas as pd
    from cryptoforecast.dataset import synthetic_feature_frame, chronological_split
    from cryptoforecast.lstm import LSTMForecaster
    from cryptoforecast.transformer import TransformerForecaster
    rss_import = peak_rss_mib()
    cls = {'lstm': LSTMForecaster, 'transformer': TransformerForecaster}[model]
    frame = synthetic_feature_frame(math.ceil((windows + 59 + 30) / 0.7), seed=seed)
    noise = np.random.default_rng(seed).normal(size=(len(frame), features))
    frame = pd.concat([frame, pd.DataFrame(noise, index=frame.index, columns=[f'noise_{i}' for i in range(features)])], axis=1)
    fold = chronological_split(frame, n_features=features, coin='SYN')
    n_train = len(fold.windows('train')[0])
    f = cls(epochs=epochs, batch_size=batch_size, patience=epochs + 1, seed=seed)
    t0 = time.perf_counter(); f.fit(fold); fit_s = time.perf_counter() - t0
    X = fold.windows('test')[0]
    t0 = time.perf_counter(); f.predict_quantiles(X); pred_s = time.perf_counter() - t0
    return dict(model=model, params=f.model.count_params(), train_windows=n_train, features=features, batch_size=batch_size,
                epoch_s=[round(s, 2) for s in f.history['seconds']], fit_s=round(fit_s, 2),
                predict_s=round(pred_s, 2), predict_windows=len(X), rss_after_import_mib=round(rss_import),
                peak_rss_mib=round(peak_rss_mib()), cpus=os.cpu_count())

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--models', nargs='+', choices=MODELS, default=list(MODELS))
    p.add_argument('--windows', type=int, default=2000)
    p.add_argument('--features', type=int, default=60)
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--one', choices=MODELS, help=argparse.SUPPRESS)  # internal: run one model in this process
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(a.one, a.windows, a.features, a.epochs, a.batch_size, a.seed))); return 0
    print(f"deep training cost: {a.windows} windows x 60 days x {a.features} features, batch {a.batch_size}, {a.epochs} epochs")
    for m in a.models:
        cmd = [sys.executable, __file__, '--one', m, '--windows', str(a.windows), '--features', str(a.features),
               '--epochs', str(a.epochs), '--batch-size', str(a.batch_size), '--seed', str(a.seed)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode: print(f"{m}: failed\n{out.stderr[-2000:]}"); return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        steady = r['epoch_s'][1:] or r['epoch_s']
        print(f"{m:<12} params {r['params']:>8,}  train windows {r['train_windows']}  "
              f"epoch s {r['epoch_s']} (first includes tracing; steady {sum(steady) / len(steady):.1f} s/epoch)  "
              f"predict {r['predict_s']} s for {r['predict_windows']} windows (incl. tracing)  peak RSS {r['peak_rss_mib']} MiB "
              f"(after import {r['rss_after_import_mib']} MiB)  cpus {r['cpus']}")
    return 0

if __name__ == '__main__': sys.exit(main())
