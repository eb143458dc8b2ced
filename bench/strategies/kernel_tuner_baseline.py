#!/usr/bin/env python3
"""Kernel Tuner search strategies replayed on recorded search spaces (simulation mode).

Baseline for comparing tunekit's own strategies side by side: every Kernel
Tuner strategy is run in simulation mode (``tune_kernel(simulation_mode=True,
cache=...)``) over a recorded Kernel Tuner cache file, with a budget of a fixed
fraction of the recorded space, for a number of seeds.

How the comparison is made fair (all verified by this script at run time):

* Search space == recorded configurations.  The cache's own
  ``tune_params`` are passed together with one restriction (a
  ``FunctionConstraint``) that accepts a configuration iff its key is in the
  cache.  Kernel Tuner's ``tune_cache()`` / ``infer_restrictions_from_cache``
  is NOT used because it drops failed configurations from the space, while our
  space (and budget) includes them.  Inside the strategy wrapper the script
  checks that ``set(searchspace.list)`` equals the set of cache keys (every
  run checks the size; the first run per file and process checks the full set).

* Budget = distinct configurations evaluated, failed ones included.  In
  simulation mode Kernel Tuner's ``TuningBudget`` is incremented by the
  ``SimulationRunner`` once per *first* visit of a cache key (failed entries
  included; repeats are free; configurations outside the space become
  ``InvalidConfig`` without being counted), and the runner refuses to evaluate
  anything once ``max_fevals`` is reached.  That is exactly our counting.
  After every run the script counts the distinct configuration keys in the
  returned results ("evaluations"), asserts they are all cache entries and
  that evaluations <= budget.
  Some strategies additionally use ``max_fevals`` as their *own* stopping
  counter and count differently, which made them stop early:
    - dual_annealing passes it to ``scipy.optimize.dual_annealing(maxfun=)``,
      which counts every call, repeats of already-visited configurations
      included;
    - skopt counts every ask (repeats included).
  For those (``INFLATE_INTERNAL_LIMIT``) the wrapper raises the
  strategy-internal limit (``strategy_options["max_fevals"]`` and
  ``tuning_options["max_fevals"]``) to a huge value *after* Kernel Tuner has
  created its ``TuningBudget`` from the real budget, so the run stops exactly
  when ``budget`` distinct configurations have been evaluated.
  Runs that still evaluate fewer than ``budget`` configurations ended on their
  own (e.g. genetic_algorithm: 90 generations; basinhopping: 100 hops;
  minimize: one local optimisation; simulated_annealing: its schedule reaches
  T_min after 75 % of max_fevals, see the ``simulated_annealing_fullbudget``
  variant); they are flagged with ``ended_early_runs``.

* Seeding: ``random.seed(seed)`` and ``numpy.random.seed(seed)`` right before
  each ``tune_kernel`` call (Kernel Tuner's strategies and its Searchspace
  sampling use the global ``random`` / ``numpy.random`` state; scipy's
  optimisers fall back to the global numpy state), plus ``tune_kernel(seed=)``
  (only the pymoo strategies read it).  scipy's ``qmc.LatinHypercube`` (used by
  diff_evo's initial population and bayes_opt's initial sample) ignores the
  global state, so it is patched to take its rng from the seeded numpy state.  ``--check-determinism`` re-runs seed 0
  and compares the evaluated sequences.

Usage (see bench/strategies/README.md):
  .venv-kt/bin/python bench/strategies/kernel_tuner_baseline.py \
      --seeds 20 --jobs 2 --out bench/strategies/kernel_tuner_results.json
"""

import argparse
import contextlib
import gzip
import io
import json
import math
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import traceback
import warnings

DATA_DIR = "/work/shared/data/searchspaces"
FILES = ["gemm", "convolution", "pnpoly"]
BUDGETS = {"2%": 0.02, "5%": 0.05}

# Cheap strategies first; bayes_opt is slow and is run last.
STRATEGIES = [
    "random_sample",
    "genetic_algorithm",
    "pso",
    "simulated_annealing",
    "greedy_ils",
    "greedy_mls",
    "mls",
    "ordered_greedy_mls",
    "firefly_algorithm",
    "diff_evo",
    "basinhopping",
    "dual_annealing",
    "minimize",
    "adaptive_tabu_greywolf",
    "simulated_annealing_fullbudget",  # variant, see sa_full_budget_options()
    "pyatf_strategies",  # fails with the PyPI pyATF (0.0.13): TP() signature mismatch
    "bayes_opt",  # slow
    "hybrid_vndx",  # slow-ish (neighbour computations)
    "nsga2",  # slow-ish (pymoo)
    "nsga3",
    "skopt",  # needs scikit-optimize; crashes on spaces with failures (gp_hedge NaN)
]
# brute_force is not a search strategy (it rejects max_fevals and enumerates in order).

# Strategies whose own stopping counter (fed from max_fevals) counts repeated
# evaluations; see module docstring.
INFLATE_INTERNAL_LIMIT = {"dual_annealing", "skopt"}
BIG = 10**9


def round_half_up(x):
    return int(math.floor(x + 0.5))


def sa_full_budget_options(budget):
    """Kernel Tuner's simulated_annealing cools with T = T0 * alpha**(max_iter/max_fevals * c),
    where alpha**max_iter == T_min (not T_min/T0); it therefore reaches T_min and stops after
    c = max_fevals * log(T_min/T0)/log(T_min) = 0.75 * max_fevals distinct evaluations (defaults
    T0=0.1, T_min=1e-4).  The variant stretches the schedule (strategy-internal max_fevals =
    budget / 0.75) so that it can use the whole budget; the real budget is still enforced by
    Kernel Tuner's TuningBudget."""
    T0, Tmin = 0.1, 0.0001
    frac = math.log(Tmin / T0) / math.log(Tmin)
    return math.ceil(budget / frac) + 1


# --------------------------------------------------------------------------- worker side

_CTX = {}  # per process: file name -> dict(data, path, keys, tune_params, valid set, checked)


def _load(name, workdir):
    if name in _CTX:
        return _CTX[name]
    src = os.path.join(DATA_DIR, f"{name}_RTX_3090.json.gz")
    path = os.path.join(workdir, f"{name}_RTX_3090.json")
    if not os.path.exists(path):
        tmp = path + f".{os.getpid()}.tmp"
        with gzip.open(src, "rb") as fi, open(tmp, "wb") as fo:
            fo.write(fi.read())
        os.replace(tmp, path)  # Kernel Tuner needs a plain .json file
    with open(path) as fh:
        data = json.load(fh)
    keys = data["tune_params_keys"]
    tune_params = {k: data["tune_params"][k] for k in keys}
    valid = set(tuple(rec[k] for k in keys) for rec in data["cache"].values())
    for key, rec in data["cache"].items():  # keys must be "v1,v2,..." in tune_params_keys order
        assert key == ",".join(str(rec[k]) for k in keys)
    assert len(valid) == len(data["cache"])
    ok_times = [rec["time"] for rec in data["cache"].values() if isinstance(rec["time"], (int, float))]
    ps = data["problem_size"]
    _CTX[name] = dict(
        data=data,
        path=path,
        keys=keys,
        tune_params=tune_params,
        valid=valid,
        problem_size=tuple(ps) if isinstance(ps, list) else (ps,),
        n=len(data["cache"]),
        optimum=min(ok_times),
        checked_full=False,
    )
    return _CTX[name]


class WrappedStrategy:
    """User-defined strategy object (tune_kernel accepts any object with .tune) that
    delegates to a Kernel Tuner strategy after checking the search space and, where
    needed, decoupling the strategy-internal stopping counter from the real budget."""

    def __init__(self, name, ctx, internal_max_fevals=None):
        self.name = name
        self.ctx = ctx
        self.internal_max_fevals = internal_max_fevals
        self.strategy_seconds = None
        self.space_size = None

    def tune(self, searchspace, runner, tuning_options):
        from kernel_tuner.interface import strategy_map

        ctx = self.ctx
        self.space_size = searchspace.size
        if searchspace.size != ctx["n"]:
            raise RuntimeError(f"search space has {searchspace.size} configurations, cache has {ctx['n']}")
        if not ctx["checked_full"]:
            if set(tuple(c) for c in searchspace.list) != ctx["valid"]:
                raise RuntimeError("search space configurations differ from the cache keys")
            ctx["checked_full"] = True
        assert tuning_options.budget.max_fevals == tuning_options.strategy_options["max_fevals"]
        base = "simulated_annealing" if self.name == "simulated_annealing_fullbudget" else self.name
        # pymoo strategies read the algorithm name from tuning_options.strategy
        tuning_options["strategy"] = base
        if self.internal_max_fevals is not None:
            # the TuningBudget (created by tune_kernel from the real max_fevals) stays as is
            tuning_options.strategy_options["max_fevals"] = self.internal_max_fevals
            tuning_options["max_fevals"] = self.internal_max_fevals
        t0 = time.perf_counter()
        try:
            return strategy_map[base].tune(searchspace, runner, tuning_options)
        finally:
            self.strategy_seconds = time.perf_counter() - t0


_LHS_PATCHED = False


def _patch_latin_hypercube():
    """scipy.stats.qmc.LatinHypercube(d) without rng= draws fresh OS entropy, which makes
    diff_evo (Searchspace.get_LHS_sample) and bayes_opt (LHS initial sample) unseedable.
    Give it a Generator derived from the (seeded) global numpy state instead."""
    global _LHS_PATCHED
    if _LHS_PATCHED:
        return
    import numpy as np
    import scipy.stats.qmc as qmc
    import kernel_tuner.strategies.bayes_opt as kt_bo

    orig = qmc.LatinHypercube

    class SeededLatinHypercube(orig):
        def __init__(self, d, **kw):
            if kw.get("rng") is None and kw.get("seed") is None:
                kw.pop("seed", None)
                kw["rng"] = np.random.default_rng(np.random.randint(0, 2**31 - 1))
            super().__init__(d, **kw)

    qmc.LatinHypercube = SeededLatinHypercube  # searchspace.py imports it at call time
    kt_bo.LatinHypercube = SeededLatinHypercube  # bayes_opt.py imported it at module load
    _LHS_PATCHED = True


_READ_CACHE_PATCHED = False


def _memoize_read_cache():
    """Kernel Tuner re-reads and re-parses the whole cache file on every tune_kernel call
    (util.process_cache -> util.read_cache): ~0.5 s for the 16 MB gemm file on an idle core,
    several seconds on a loaded machine, dwarfing most strategies.  Parse each file once per
    process and hand every call a fresh copy (new dicts for the file, the mapping and every
    entry, so nothing a run might mutate leaks into the next).  In simulation mode the file
    is opened read-only (open_cache=False), so nothing else changes."""
    global _READ_CACHE_PATCHED
    if _READ_CACHE_PATCHED:
        return
    import kernel_tuner.util as ktu

    orig = ktu.read_cache
    memo = {}

    def read_cache(cachefile, open_cache=True):
        if open_cache:
            return orig(cachefile, open_cache)
        st = os.stat(cachefile)
        k = (os.path.abspath(cachefile), st.st_mtime_ns, st.st_size)
        if k not in memo:
            memo[k] = orig(cachefile, open_cache=False)
        data = memo[k]
        out = dict(data)
        out["cache"] = {key: dict(rec) for key, rec in data["cache"].items()}
        return out

    ktu.read_cache = read_cache  # process_cache looks the name up in kernel_tuner.util at call time
    _READ_CACHE_PATCHED = True


def run_one(name, strategy, budget, seed, workdir):
    """One tune_kernel call; returns the run record (and the evaluated key sequence)."""
    import numpy as np
    from constraint import FunctionConstraint
    from kernel_tuner import tune_kernel

    _patch_latin_hypercube()
    _memoize_read_cache()
    ctx = _load(name, workdir)
    valid = ctx["valid"]

    def in_recorded_space(*values):
        return values in valid

    internal = None
    if strategy in INFLATE_INTERNAL_LIMIT:
        internal = BIG
    elif strategy == "simulated_annealing_fullbudget":
        internal = sa_full_budget_options(budget)
    wrapped = WrappedStrategy(strategy, ctx, internal)

    cwd = os.getcwd()
    os.chdir(workdir)  # pyatf_strategies writes ./pyatf_searchspace_caches
    random.seed(seed)
    np.random.seed(seed)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            results, _env = tune_kernel(
                ctx["data"]["kernel_name"],
                "",
                ctx["problem_size"],
                [],
                ctx["tune_params"],
                restrictions=[FunctionConstraint(in_recorded_space)],
                cache=ctx["path"],
                simulation_mode=True,
                strategy=wrapped,
                strategy_options={"max_fevals": budget},
                quiet=True,
                seed=seed,
            )
            seconds = time.perf_counter() - t0
    finally:
        os.chdir(cwd)

    keys = ctx["keys"]
    seq, seen = [], set()
    best = None
    for r in results:
        k = ",".join(str(r[p]) for p in keys)
        if k not in ctx["data"]["cache"]:
            raise RuntimeError(f"result {k} is not a cache entry")
        if k not in seen:
            seen.add(k)
            seq.append(k)
        if "__error__" not in r and isinstance(r.get("time"), (int, float)):
            best = r["time"] if best is None else min(best, r["time"])
    if len(seen) > budget:
        raise RuntimeError(f"{len(seen)} distinct evaluations > budget {budget}")
    rec = dict(
        seed=seed,
        evaluations=len(seen),
        best=best,
        ratio=(best / ctx["optimum"]) if best is not None else None,
        seconds=seconds,
        strategy_seconds=wrapped.strategy_seconds,
    )
    return rec, seq


def task(args):
    """Worker: all seeds of one (file, budget label, strategy)."""
    name, blabel, budget, strategy, seeds, workdir = args
    runs, error = [], None
    t0 = time.perf_counter()
    for seed in seeds:
        try:
            rec, _ = run_one(name, strategy, budget, seed, workdir)
        except Exception as e:  # skip crashing strategies, keep the error string
            error = f"seed {seed}: {type(e).__name__}: {e}"
            tb = traceback.format_exc(limit=3)
            error += " | " + tb.strip().splitlines()[-1][:300] if tb else ""
            break
        runs.append(rec)
    return name, blabel, strategy, runs, error, time.perf_counter() - t0


# --------------------------------------------------------------------------- driver side


def summarize(runs, budget, error):
    out = {"runs": runs, "seeds": len(runs)}
    if error:
        out["error"] = error
    if runs:
        ratios = [r["ratio"] if r["ratio"] is not None else math.inf for r in runs]
        med = statistics.median(ratios)
        out["median_ratio"] = med if math.isfinite(med) else None
        out["mean_ratio"] = statistics.fmean(ratios) if all(map(math.isfinite, ratios)) else None
        out["within_5"] = sum(x <= 1.05 for x in ratios) / len(runs)
        out["within_10"] = sum(x <= 1.10 for x in ratios) / len(runs)
        out["median_seconds"] = statistics.median(r["seconds"] for r in runs)
        out["median_strategy_seconds"] = statistics.median(r["strategy_seconds"] for r in runs)
        out["median_evaluations"] = statistics.median(r["evaluations"] for r in runs)
        out["ended_early_runs"] = sum(r["evaluations"] < budget for r in runs)
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json(doc, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, path)


def check_determinism(files, strategies, workdir):
    bad = []
    for name in files:
        ctx = _load(name, workdir)
        budget = round_half_up(0.02 * ctx["n"])
        for s in strategies:
            try:
                a = run_one(name, s, budget, 0, workdir)[1]
                b = run_one(name, s, budget, 0, workdir)[1]
            except Exception as e:
                print(f"{name:12s} {s:32s} error {type(e).__name__}: {e}")
                continue
            same = a == b
            print(f"{name:12s} {s:32s} {'deterministic' if same else 'NOT deterministic'} ({len(a)} evals)")
            if not same:
                bad.append((name, s))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", default=",".join(FILES))
    ap.add_argument("--budgets", default=",".join(BUDGETS), help="comma list of 2%%,5%%")
    ap.add_argument("--strategies", default=",".join(s for s in STRATEGIES if s != "bayes_opt"),
                    help="comma list (default: all except bayes_opt); 'all' for every one")
    ap.add_argument("--seeds", type=int, default=20, help="number of seeds")
    ap.add_argument("--chunk", type=int, default=0,
                    help="seeds per task (default: all seeds of a file/budget/strategy in one task)")
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (seeds are seed-start .. seed-start+seeds-1)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (tasks = file x budget x strategy)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_tuner_results.json"))
    ap.add_argument("--merge", action="store_true",
                    help="keep what is already in --out: other entries stay, and runs of a re-run entry are "
                         "merged by seed (e.g. add bayes_opt later, or more seeds with --seed-start)")
    ap.add_argument("--workdir", default=None, help="where the decompressed caches go (default: a temp dir)")
    ap.add_argument("--check-determinism", action="store_true",
                    help="only run seed 0 twice per strategy/file (2%% budget) and compare")
    args = ap.parse_args()

    import kernel_tuner
    from importlib.metadata import version as pkg_version

    files = [f for f in args.files.split(",") if f]
    budgets = [b for b in args.budgets.split(",") if b]
    strategies = STRATEGIES if args.strategies == "all" else [s for s in args.strategies.split(",") if s]
    workdir = args.workdir or tempfile.mkdtemp(prefix="kt_baseline_")
    os.makedirs(workdir, exist_ok=True)

    if args.check_determinism:
        bad = check_determinism(files, strategies, workdir)
        sys.exit(1 if bad else 0)

    doc = None
    if args.merge and os.path.exists(args.out):
        with open(args.out) as fh:
            doc = json.load(fh)
    if doc is None:
        doc = {"files": {}}
    doc.update({
        "kernel_tuner_version": pkg_version("kernel_tuner"),
        "python": platform.python_version(),
        "numpy": pkg_version("numpy"),
        "scipy": pkg_version("scipy"),
        "machine": cpu_model(),
        "cpu_count": os.cpu_count(),
        "jobs": args.jobs,
        "mode": "kernel_tuner.tune_kernel(simulation_mode=True) on the recorded cache; "
                "space = cache entries (failed included); budget = distinct configurations "
                "evaluated, failed included; ratio = best ok time / optimum of the cache",
    })
    doc.pop("command", None)
    doc.setdefault("commands", [])
    doc["commands"].append({"command": " ".join(["python"] + sys.argv), "seconds": None})
    doc.setdefault("notes", {})
    doc["notes"]["internal_limit_inflated"] = sorted(INFLATE_INTERNAL_LIMIT)
    doc["notes"]["simulated_annealing_fullbudget"] = sa_full_budget_options.__doc__.split("\n")[0] + " ..."

    tasks = []
    for name in files:
        ctx = _load(name, workdir)
        fentry = doc["files"].setdefault(name, {})
        fentry.update(configurations=ctx["n"], optimum=ctx["optimum"],
                      failed=sum(isinstance(r["time"], str) for r in ctx["data"]["cache"].values()))
        fentry.setdefault("budgets", {})
        for bl in budgets:
            budget = round_half_up(BUDGETS[bl] * ctx["n"])
            be = fentry["budgets"].setdefault(bl, {})
            be["budget"] = budget
            be.setdefault("strategies", {})
    # order: strategy-major so that cheap strategies finish first on all files; within a
    # strategy the largest budgets first (better load balance); seeds split in --chunk chunks
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    chunk = args.chunk or len(seeds)
    for s in strategies:
        group = []
        for name in files:
            for bl in budgets:
                budget = doc["files"][name]["budgets"][bl]["budget"]
                for i in range(0, len(seeds), chunk):
                    group.append((name, bl, budget, s, seeds[i:i + chunk], workdir))
        group.sort(key=lambda t: (-t[2], t[4][0]))
        tasks.extend(group)
    fresh = set()  # entries (re)started by this invocation
    _CTX.clear()  # workers load their own copies

    t_start = time.perf_counter()
    write_json(doc, args.out)
    print(f"kernel_tuner {doc['kernel_tuner_version']}, {len(tasks)} tasks, workdir {workdir}", flush=True)

    def handle(res):
        name, bl, s, runs, error, secs = res
        be = doc["files"][name]["budgets"][bl]
        old = be["strategies"].get(s) if (args.merge or (name, bl, s) in fresh) else None
        fresh.add((name, bl, s))
        if old and error is None and old.get("error"):
            error = old["error"]
        if old and old.get("runs"):
            new_seeds = {r["seed"] for r in runs}
            runs = sorted([r for r in old["runs"] if r["seed"] not in new_seeds] + runs, key=lambda r: r["seed"])
            secs += old.get("task_seconds", 0.0)
        be["strategies"][s] = summarize(runs, be["budget"], error)
        be["strategies"][s]["task_seconds"] = secs
        doc["commands"][-1]["seconds"] = time.perf_counter() - t_start
        doc["total_seconds"] = sum(c["seconds"] or 0.0 for c in doc["commands"])
        write_json(doc, args.out)
        e = be["strategies"][s]
        print(f"[{time.perf_counter() - t_start:7.0f}s] {name:11s} {bl:3s} {s:30s} "
              f"seeds={e['seeds']:2d} med_ratio={e.get('median_ratio')} within5={e.get('within_5')} "
              f"med_s={e.get('median_seconds')} med_evals={e.get('median_evaluations')}"
              + (f" ERROR {error}" if error else ""), flush=True)

    if args.jobs > 1:
        with mp.get_context("fork").Pool(args.jobs, maxtasksperchild=8) as pool:
            for res in pool.imap_unordered(task, tasks):
                handle(res)
    else:
        for t in tasks:
            handle(task(t))
    doc["commands"][-1]["seconds"] = time.perf_counter() - t_start
    doc["total_seconds"] = sum(c["seconds"] or 0.0 for c in doc["commands"])
    write_json(doc, args.out)
    print(f"done in {doc['commands'][-1]['seconds']:.0f}s -> {args.out}")


if __name__ == "__main__":
    main()
