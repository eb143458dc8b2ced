#!/usr/bin/env python3
"""Writes the store test fixtures the way Kernel Tuner writes its files.

kernel_tuner_cache.json: a cache file laid out as Kernel Tuner's cache writer
lays it out (header via json.dumps(indent=""), one record a line), with every
kind of value the store must carry back exactly: integer, float, string and
boolean parameters, the three failure kinds, a metric, an observer's list, an
integer-valued time, a whole-valued float, non-ASCII text.

t4_results.json: the same results as a T4 results file (schema 1.0.0), laid
out as Kernel Tuner's T4 writer lays it out, plus a result with a fractional
correctness and a member the schema does not name.

Run from this directory: python3 make_fixtures.py
"""
import json

tune_params = {
    "block_size_x": [32, 64, 128],
    "vector": [0.5, 1.0, 2.0],
    "layout": ["row", "col"],
    "use_shared": [True, False],
}


def record(values, time, **fields):
    entry = dict(zip(tune_params, values))
    entry["time"] = time
    entry.update(fields)
    return entry


def key(values):
    return ",".join(str(v) for v in values)


records = [
    record((32, 0.5, "row", True), 1.25, times=[1.5, 1.25, 1.0], compile_time=101.5, verification_time=0,
           benchmark_time=3.75, **{"GFLOP/s": 812.5}, strategy_time=0, framework_time=0.625,
           timestamp="2024-03-01 10:00:00.000001+00:00"),
    record((32, 1.0, "col", False), "CompilationFailedConfig", compile_time=12.5, verification_time=0,
           benchmark_time=0, strategy_time=0, framework_time=1.5, timestamp="2024-03-01 10:00:01.000002+00:00"),
    record((64, 2.0, "row", False), "RuntimeFailedConfig", compile_time=99.0, verification_time=0,
           benchmark_time=0.125, strategy_time=0, framework_time=2.25, timestamp="2024-03-01 10:00:02.000003+00:00"),
    record((128, 0.5, "col", True), "InvalidConfig", compile_time=0, verification_time=0, benchmark_time=0,
           strategy_time=0, framework_time=0.0625, timestamp="2024-03-01 10:00:03.000004+00:00"),
    record((64, 1.0, "col", True), 3.0, times=[3.0, 3.0, 3.0], compile_time=88.125, verification_time=1.5,
           benchmark_time=9.0, **{"GFLOP/s": 338.54166666666663}, power_readings=[[0.0, 301.5], [1.5, 305.25]],
           strategy_time=0.001953125, framework_time=0.5, timestamp="2024-03-01 10:00:04.000005+00:00"),
    record((128, 2.0, "row", False), 0.75, times=[0.7500001, 0.7499999, 0.75], compile_time=150.0000001,
           verification_time=0, benchmark_time=2.25, **{"GFLOP/s": 1354.1666666666667}, note="warm \u00e9t\u00e9 \u2713",
           strategy_time=0, framework_time=0.25, timestamp="2024-03-01 10:00:05.000006+00:00"),
]

header = {
    "device_name": "Test GPU \u00c4 (fixture)",
    "kernel_name": "fixture_kernel",
    "problem_size": [1024, 768],
    "tune_params_keys": list(tune_params),
    "tune_params": tune_params,
    "objective": "time",
    "cache": {},
}
text = json.dumps(header, indent="")[:-3]
for values, entry in zip([tuple(r[k] for k in tune_params) for r in records], records):
    text += "\n" + json.dumps({key(values): entry})[1:-1] + ","
text = text[:-1] + "}\n}"
with open("kernel_tuner_cache.json", "w") as out:
    out.write(text)

timing_keys = ["compile_time", "benchmark_time", "framework_time", "strategy_time", "verification_time"]
skip = list(tune_params) + timing_keys + ["timestamp", "times"]
invalidity = {"CompilationFailedConfig": "compile", "RuntimeFailedConfig": "runtime", "InvalidConfig": "constraints"}
results = []
for entry in records:
    out = {"timestamp": entry["timestamp"], "configuration": {k: v for k, v in entry.items() if k in tune_params}}
    times = {"compilation": entry["compile_time"], "benchmark": entry["benchmark_time"],
             "framework": entry["framework_time"], "search_algorithm": entry["strategy_time"],
             "validation": entry["verification_time"]}
    if "times" in entry:
        times["runtimes"] = entry["times"]
    out["times"] = times
    out["invalidity"] = invalidity.get(entry["time"], "correct") if isinstance(entry["time"], str) else "correct"
    out["correctness"] = 1
    out["measurements"] = [dict(name=k, value=v, unit="ms" if k.startswith("time") else "")
                           for k, v in entry.items() if k not in skip]
    out["objectives"] = ["time"]
    results.append(out)
odd = dict(results[0])
odd["configuration"] = {"block_size_x": 128, "vector": 1.0, "layout": "col", "use_shared": False}
odd["correctness"] = 0.5
odd["invalidity"] = "correctness"
odd["measurements"] = [dict(name="time", value=2.5, unit="ms")]
odd["host"] = {"name": "node17", "cores": 64}
results.append(odd)
with open("t4_results.json", "w") as out:
    json.dump(dict(results=results, schema_version="1.0.0"), out)
