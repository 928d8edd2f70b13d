"""Date parts, holidays and event distances for tables."""
import numpy as np
import pandas as pd
import pytest

from centaur.core.errors import CentaurError
from centaur.data.dates import add_date_parts, add_event_distance, add_holidays


def test_date_parts_of_known_dates():
    df = pd.DataFrame({"saledate": ["2024-02-29", "2024-03-31", "2023-12-31", "2024-01-01"], "x": [1, 2, 3, 4]})
    out, cols = add_date_parts(df, "saledate")
    assert cols[0] == "saleYear" and cols[-1] == "saleElapsed" and len(cols) == 13
    assert "saledate" not in out.columns and "saledate" in df.columns  # the caller's frame is untouched
    row = out.iloc[0]  # leap day, a Thursday, end of February
    assert (row.saleYear, row.saleMonth, row.saleDay, row.saleDayofweek, row.saleDayofyear) == (2024, 2, 29, 3, 60)
    assert row.saleWeek == 9 and row.saleIs_month_end == 1 and row.saleIs_quarter_end == 0
    assert out.saleIs_quarter_end.tolist() == [0, 1, 1, 0]
    assert out.saleIs_year_end.tolist() == [0, 0, 1, 0]
    assert out.saleIs_year_start.tolist() == [0, 0, 0, 1]
    assert out.saleIs_quarter_start.tolist() == [0, 0, 0, 1]
    assert out.saleWeek.tolist() == [9, 13, 52, 1]  # ISO weeks: 2024-01-01 is week 1
    assert out.saleElapsed.iloc[3] == pd.Timestamp("2024-01-01").timestamp()
    assert out.saleYear.dtype == np.int64


def test_date_parts_prefix_time_and_missing():
    df = pd.DataFrame({"Date": ["2024-05-01 13:45:10", None]})
    out, cols = add_date_parts(df, "Date", drop=False, time=True)
    assert "Date" in out.columns and cols[0] == "Year" and "Hour" in cols
    assert out.Hour.iloc[0] == 13 and out.Second.iloc[0] == 10
    assert np.isnan(out.Year.iloc[1]) and np.isnan(out.Is_month_end.iloc[1])  # FillMissing handles these


def test_unparseable_dates_name_rows():
    df = pd.DataFrame({"Date": ["2024-01-01", "2024-13-45", "2024-01-03", "soon"]})
    with pytest.raises(CentaurError, match=r"row 1: '2024-13-45'.*row 3: 'soon'.*YYYY-MM-DD"):
        add_date_parts(df, "Date")
    with pytest.raises(CentaurError, match="Did you mean: 'Date'"):
        add_date_parts(df, "date_")
    with pytest.raises(CentaurError, match="numbers"):
        add_date_parts(pd.DataFrame({"d": [20240101]}), "d")


def test_holidays_known_day_and_unknown_country():
    df = pd.DataFrame({"Date": ["2024-07-04", "2024-07-05", "2024-12-25"]})
    out, cols = add_holidays(df, "Date", "us")
    assert cols == ["Holiday"] and out.Holiday.tolist() == [1, 0, 1]
    with pytest.raises(CentaurError, match="'PT'"):
        add_holidays(df, "Date", "Portugal")
    with pytest.raises(CentaurError, match="unknown holiday country 'QQ'"):
        add_holidays(df, "Date", "QQ")


def test_event_distance_per_group_hand_checked():
    # rows deliberately out of order: the result follows the caller's row order
    df = pd.DataFrame({
        "Store": ["a", "a", "a", "a", "b", "b", "b"],
        "Date": ["2024-01-03", "2024-01-01", "2024-01-06", "2024-01-02", "2024-01-01", "2024-01-02", "2024-01-04"],
        "Promo": [1, 0, 0, 0, 0, 1, 0],
    }).iloc[[0, 4, 1, 5, 2, 6, 3]]
    out, cols = add_event_distance(df, "Date", "Promo", group="Store")
    assert cols == ["PromoDaysSince", "PromoDaysUntil"]
    got = out.set_index(["Store", "Date"]).sort_index()
    since = got.PromoDaysSince.tolist()  # a: 01-01, 01-02, 01-03, 01-06; b: 01-01, 01-02, 01-04
    until = got.PromoDaysUntil.tolist()
    np.testing.assert_array_equal(since, [np.nan, np.nan, 0, 3, np.nan, 0, 2])
    np.testing.assert_array_equal(until, [2, 1, 0, np.nan, 1, 0, np.nan])
    # without groups store b's promo on 01-02 counts for store a's rows too
    out, _ = add_event_distance(df, "Date", "Promo")
    assert out.set_index(["Store", "Date"]).sort_index().PromoDaysSince.tolist()[1] == 0


def test_event_column_must_be_numeric():
    df = pd.DataFrame({"Date": ["2024-01-01"], "StateHoliday": ["a"]})
    with pytest.raises(CentaurError, match="expected 0/1"):
        add_event_distance(df, "Date", "StateHoliday")
