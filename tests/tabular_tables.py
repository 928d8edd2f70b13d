"""Synthetic tables for the table-model tests, built so the answer is known."""
import numpy as np
import pandas as pd


def bookings(n=3000, seed=0, start="2015-07-01", days=700):
    """Hotel bookings, one row each, in date order: the price per night depends on the room type,
    the hotel, the season, the weekday of arrival, the number of adults and the lead time, plus a
    yearly rise and noise (sd 8). Arrival dates run from `start` over `days` days, so a time split
    validates on months (and a year) the training rows reach only in part."""
    rng = np.random.default_rng(seed)
    arrival = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, days, n)), unit="D")
    df = pd.DataFrame({
        "arrival_date": arrival.strftime("%Y-%m-%d"),
        "hotel": rng.choice(["city", "resort"], n, p=[0.6, 0.4]),
        "room_type": rng.choice(list("ABCD"), n, p=[0.5, 0.25, 0.15, 0.1]),
        "country": rng.choice(["PRT", "GBR", "FRA", "ESP", "DEU", "IRL"], n),
        "adults": rng.choice([1, 2, 3], n, p=[0.2, 0.7, 0.1]),
        "lead_time": rng.gamma(2.0, 40.0, n).round(),
        "nights": rng.integers(1, 8, n),
    })
    room = df["room_type"].map({"A": 0.0, "B": 30.0, "C": 70.0, "D": 120.0})
    season = 20 * np.sin(2 * np.pi * (arrival.day_of_year.to_numpy() - 110) / 365.25)  # a summer peak
    weekend = 12.0 * (arrival.day_of_week.to_numpy() >= 4)
    years = (arrival - pd.Timestamp(start)).days.to_numpy() / 365.25
    price = (70 + room + 20 * (df["hotel"] == "city") + season + weekend + 8 * df["adults"]
             - 0.08 * df["lead_time"] + 2 * years + rng.normal(0, 8, n))
    df["price"] = price.round(2)
    return df
