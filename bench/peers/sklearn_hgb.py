"""The scikit-learn peer of the analytics benchmark: HistGradientBoostingClassifier on the same
pipe-year features Mizumori trains on (exported by `mizumori risk features`), with the same
time split: for test year t, train on the pipe-years of t-TRAIN_YEARS .. t-1 (label: at least
one break in the year), score the mains in service on 1 January of t.

It writes scores only; `mizumori risk backtest --peer NAME=FILE` computes capture and AUC with
the same code as for Mizumori's own ranking, so the metric definitions are identical.

Usage: python sklearn_hgb.py FEATURES.csv FROM TO TRAIN_YEARS OUT_DIR
Writes OUT_DIR/hgb.csv (score = P(break)) and OUT_DIR/hgb-per-km.csv (P(break) per km: the
same walk-by-length order Mizumori uses). Prints one line per test year with the wall time of
fit + predict and its CPU time over all threads (reading the CSV is not counted).
"""

import sys
import time

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

FEATURES = [
    "material",
    "age_years",
    "age_known",
    "install_decade",
    "diameter_mm",
    "length_m",
    "prior_breaks",
    "breaks_last_5y",
    "years_since_last_break",
]


def main():
    path, first, last, train_years, out_dir = sys.argv[1:6]
    first, last, train_years = int(first), int(last), int(train_years)
    data = pd.read_csv(path, dtype={"asset_id": str})
    data["material"] = data["material"].astype("category")
    out = {"hgb": [], "hgb-per-km": []}
    for year in range(first, last + 1):
        train = data[(data["year"] >= year - train_years) & (data["year"] < year)]
        test = data[data["year"] == year]
        start, cpu = time.perf_counter(), time.process_time()
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
        model.fit(train[FEATURES], train["breaks"] > 0)
        p = model.predict_proba(test[FEATURES])[:, list(model.classes_).index(True)]
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"sklearn-hgb {year}: trained on {len(train)} pipe-years, scored {len(test)} mains, "
              f"fit+predict {seconds:.2f} s (cpu {cpu:.2f} s)")
        out["hgb"].append(pd.DataFrame({"year": year, "asset_id": test["asset_id"], "score": p}))
        per_km = p / (test["length_m"].to_numpy() / 1000.0)
        out["hgb-per-km"].append(pd.DataFrame({"year": year, "asset_id": test["asset_id"], "score": per_km}))
    for name, frames in out.items():
        pd.concat(frames).to_csv(f"{out_dir}/{name}.csv", index=False, float_format="%.10g")


if __name__ == "__main__":
    main()
