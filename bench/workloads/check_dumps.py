"""Checks the folders `tunekit workload NAME --dump DIR` wrote: every output
array equals its reference array within the spec's tolerance as numpy sees it
(the files load with numpy.load, the shapes and dtypes agree). Prints one JSON
object; exits 1 when any output differs."""
import json
import pathlib
import sys
import tomllib

import numpy as np


def check(folder):
    params = json.loads((folder / "params.json").read_text())
    spec = tomllib.load(open(params["spec"], "rb"))
    tolerance = spec.get("reference", {}).get("tolerance", {})
    absolute, relative = tolerance.get("absolute", 1e-6), tolerance.get("relative", 1e-5)
    result = {"workload": params["workload"], "outputs_from": params["outputs_from"], "outputs": []}
    for entry in params["files"]:
        if entry["role"] != "output":
            continue
        got = np.load(folder / entry["file"]).astype(np.float64)
        want = np.load(folder / entry["file"].replace(".npy", "_reference.npy")).astype(np.float64)
        error = np.abs(got - want)
        allowed = absolute + relative * np.abs(want)
        result["outputs"].append({"file": entry["file"], "elements": int(got.size),
                                  "max_abs_error": float(error.max()) if got.size else 0.0,
                                  "within_tolerance": bool(got.shape == want.shape and np.all(error <= allowed))})
    result["ok"] = all(each["within_tolerance"] for each in result["outputs"])
    return result


def main():
    results = [check(folder) for folder in sorted(pathlib.Path(sys.argv[1]).iterdir()) if folder.is_dir()]
    json.dump({"dumps": results, "all_ok": all(r["ok"] for r in results)}, sys.stdout, indent=1)
    print()
    sys.exit(0 if all(r["ok"] for r in results) else 1)


if __name__ == "__main__":
    main()
