"""Date features for tables: date parts, holidays, and days since or until an event."""
import re

import numpy as np
import pandas as pd

from ..core.errors import CentaurError, did_you_mean

# fastai's add_datepart attributes (Rossmann, lesson 6), in the same order
_PARTS = ["Year", "Month", "Week", "Day", "Dayofweek", "Dayofyear", "Is_month_end", "Is_month_start",
          "Is_quarter_end", "Is_quarter_start", "Is_year_end", "Is_year_start"]
_TIME_PARTS = ["Hour", "Minute", "Second"]
_EXPECTED = "ISO dates like '2024-02-29' (YYYY-MM-DD, optionally with a time: '2024-02-29 13:45:00')"
_SHOW = 5  # how many bad rows an error message lists


def check_column(df, col, what="column"):
    """Raise CentaurError unless `col` is a column of df, suggesting the nearest names."""
    if col not in df.columns:
        raise CentaurError(f"{what} {col!r} is not in the table; its columns are {_short(list(df.columns))}."
                           + did_you_mean(col, list(df.columns)))


def _short(names, n=20):
    names = [str(c) for c in names]
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _bad_rows(values, bad):
    """'row 3: '2024-13-01', row 7: 'soon'' for the first few rows where `bad` is True."""
    rows = np.flatnonzero(bad)
    if len(values) == 1:  # one row (a request's, a form's): its value, not a 'row 0' the sender never numbered
        return f"the value {values[0]!r}"
    shown = ", ".join(f"row {i}: {values[i]!r}" for i in rows[:_SHOW])
    more = f" and {len(rows) - _SHOW} more" if len(rows) > _SHOW else ""
    return f"{len(rows)} value(s) ({shown}{more}; rows counted from 0)"


# a time's offset from UTC at the end of an ISO string: '...13:45:00+01:00', '...13:45Z'
_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")


def _to_datetime(series, **kwargs):
    """pd.to_datetime(errors='coerce'), reading offsets that change within the column (summer time:
    '2016-07-01 00:00+01:00' and '2016-12-01 00:00+00:00') as each row's local time as written.

    pandas refuses such a column ("Mixed timezones detected"). Converting to UTC would move a
    midnight arrival to the day before, and a later table with one offset only keeps its local
    time, so the date parts would differ between training and prediction; the local time keeps
    them the same (and moves the order of rows by at most the change of offset).
    Returns (dates, True if offsets were dropped).
    """
    try:
        return pd.to_datetime(series, errors="coerce", **kwargs), False
    except ValueError as e:
        if "timezone" not in str(e).lower() and "offset" not in str(e).lower():
            raise
    local = series.astype("string").str.strip().str.replace(_OFFSET, r"\1", regex=True)
    return pd.to_datetime(local, errors="coerce", **kwargs), True


def _formats(values):
    """[(format, dayfirst)] that the first few values suggest, month-first first: '03/04/2016' gives
    both '%m/%d/%Y' and '%d/%m/%Y', '13/04/2016' only '%d/%m/%Y'."""
    import warnings

    from pandas.tseries.api import guess_datetime_format
    found = []
    for value in values[:20]:
        for dayfirst in (False, True):
            with warnings.catch_warnings():  # pandas warns when the value contradicts dayfirst: that is the point
                warnings.simplefilter("ignore")
                fmt = guess_datetime_format(str(value), dayfirst=dayfirst)
            if fmt and fmt not in [f for f, _ in found]:
                found.append((fmt, "%d" in fmt and "%m" in fmt and fmt.index("%d") < fmt.index("%m")))
        if found:
            break
    return found


def read_dates(series, name=None, dayfirst=None):
    """(dates, how): parse_dates' result and how the text was read, for a note to the user.

    how: {'format': 'ISO 8601' or a strptime format, 'iso': bool, 'dayfirst': bool,
    'ambiguous': bool (month-first and day-first both read every value), 'bad': rows that do
    not parse, 'local_time': True when offsets from UTC changed within the column and each
    row's local time was kept}. dayfirst: None reads day-first (31/12/2016) only when month-first leaves values
    unread that day-first reads; True or False forces one reading of non-ISO dates.
    """
    name = name if name is not None else series.name
    how = {"format": "ISO 8601", "iso": True, "dayfirst": False, "ambiguous": False}
    if pd.api.types.is_datetime64_any_dtype(series):
        how["bad"], how["local_time"] = np.zeros(len(series), dtype=bool), False
        return series, how
    if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        # pandas would read 20240229 as nanoseconds since 1970: quietly wrong, so refuse
        raise CentaurError(f"date column {name!r} holds numbers (dtype {series.dtype}), not dates; expected "
                           f"{_EXPECTED}. Convert it first, e.g. pd.to_datetime(df[{name!r}].astype(str)).")
    missing = series.isna().to_numpy()
    parsed, local = _to_datetime(series, format="ISO8601")
    bad = parsed.isna().to_numpy() & ~missing
    if bad.any():
        # not ISO: try the formats the values suggest (07/31/2015, 31/07/2015) and keep the one that
        # reads the most values; month-first wins a tie, as pandas reads it
        values = pd.unique(series[~missing].astype(str).to_numpy())
        tried = []
        for fmt, first in _formats(values):
            if dayfirst is not None and first != dayfirst and "%d" in fmt and "%m" in fmt:
                continue
            p, local = _to_datetime(series, format=fmt)
            tried.append((int((p.isna().to_numpy() & ~missing).sum()), fmt, first, p))
        if not tried:  # no format guessed: let pandas infer one from the values
            p, local = _to_datetime(series)
            tried.append((int((p.isna().to_numpy() & ~missing).sum()), "inferred by pandas", False, p))
        best = min(tried, key=lambda t: t[0])
        if best[0] < bad.sum():
            parsed = best[3]
            bad = parsed.isna().to_numpy() & ~missing
            day_month = [t for t in tried if "%d" in t[1] and "%m" in t[1]]
            how = {"format": best[1], "iso": False, "dayfirst": best[2],
                   "ambiguous": len(day_month) > 1 and all(t[0] == 0 for t in day_month)}
    how["bad"], how["local_time"] = bad, local
    return parsed, how


def ambiguous_example(series, dates):
    """A value of `series` (parsed as `dates`) that reads differently month first and day first:
    '01/02/2023' (2 January or 1 February), not '01/01/2023', which means the same either way.

    >>> ambiguous_example(pd.Series(["01/01/2023", "03/04/2023"]), pd.Series(pd.to_datetime(["2023-01-01", "2023-03-04"])))
    '03/04/2023'
    """
    given = series[dates.notna().to_numpy()].astype(str)
    for value in given:
        fields = re.findall(r"\d+", value)
        if len(fields) >= 2 and int(fields[0]) != int(fields[1]):
            return value
    return given.iloc[0] if len(given) else None


def refuse_ambiguous(series, dates, name, then):
    """CentaurError for dates that read as month first and day first alike, with an example that
    shows the doubt; `then` ends the sentence with why it matters here and what to do."""
    raise CentaurError(f"the dates in {name!r} read as month first and as day first alike (e.g. "
                       f"{ambiguous_example(series, dates)!r}: no first or second field is above 12){then}")


def parse_dates(series, name=None, dayfirst=None):
    """A column as datetime64, missing values as NaT; CentaurError naming rows that don't parse.

    ISO dates first; otherwise the format the values suggest (see read_dates: day-first only
    where month-first cannot read them, unless dayfirst says).

    >>> parse_dates(pd.Series(["2024-02-29", None])).dt.day.tolist()
    [29.0, nan]
    """
    name = name if name is not None else series.name
    parsed, how = read_dates(series, name, dayfirst)
    if how["bad"].any():
        one = len(series) == 1
        raise CentaurError(f"date column {name!r} has {_bad_rows(series.to_numpy(), how['bad'])} that "
                           f"{'does' if one else 'do'} not parse "
                           f"as dates; expected {_EXPECTED}. Fix or blank {'that cell' if one else 'those cells'}.")
    return parsed


_READABLE = {"%Y": "yyyy", "%m": "mm", "%d": "dd", "%H": "HH", "%M": "MM", "%S": "SS", "%b": "Mon", "%B": "Month",
             "%y": "yy", "%I": "hh", "%p": "AM/PM", "%f": "ffffff", "%z": "+hh:mm"}


def readable_format(fmt):
    """'%d/%m/%Y' as 'dd/mm/yyyy'.

    >>> readable_format("%d/%m/%Y %H:%M")
    'dd/mm/yyyy HH:MM'
    """
    return re.sub("%[A-Za-z]", lambda m: _READABLE.get(m.group(0), m.group(0)), fmt)


def _default_prefix(col):
    return re.sub("[Dd]ate$", "", str(col))


def _as_column(values, complete):
    # whole numbers stay int64 when every date is known; missing dates give NaN (FillMissing fills them)
    return values.astype(np.int64) if complete else values.astype(np.float64)


def add_date_parts(df, col, prefix=None, drop=True, time=False, dayfirst=None):
    """Expand a date column into the parts a model can use (fastai's add_datepart).

    Adds <prefix>Year, Month, Week (ISO), Day, Dayofweek (Monday=0), Dayofyear, Is_month_end,
    Is_month_start, Is_quarter_end, Is_quarter_start, Is_year_end, Is_year_start (0/1), and
    Elapsed (seconds since 1970-01-01); with time=True also Hour, Minute, Second. The prefix
    defaults to the column name without a trailing 'date'/'Date' ('saledate' -> 'saleYear').
    Missing dates give NaN parts. dayfirst: how to read dates such as 03/04/2016 (see parse_dates;
    a model passes how its training dates read). Returns a new frame and the names of the new columns.

    >>> out, cols = add_date_parts(pd.DataFrame({"Date": ["2024-02-29"]}), "Date")
    >>> out[["Day", "Is_month_end"]].iloc[0].tolist(), cols[0]
    ([29, 1], 'Year')
    """
    check_column(df, col, "date column")
    prefix = _default_prefix(col) if prefix is None else prefix
    dates = parse_dates(df[col], col, dayfirst=dayfirst)
    dt = dates.dt
    known = dates.notna().to_numpy()
    complete = bool(known.all())
    parts = {
        "Year": dt.year, "Month": dt.month, "Week": dt.isocalendar().week.astype("float64"), "Day": dt.day,
        "Dayofweek": dt.day_of_week, "Dayofyear": dt.day_of_year,
        "Is_month_end": dt.is_month_end, "Is_month_start": dt.is_month_start,
        "Is_quarter_end": dt.is_quarter_end, "Is_quarter_start": dt.is_quarter_start,
        "Is_year_end": dt.is_year_end, "Is_year_start": dt.is_year_start,
    }
    if time:
        parts.update({"Hour": dt.hour, "Minute": dt.minute, "Second": dt.second})
    new = {}
    for name, values in parts.items():
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
        if name.startswith("Is_"):  # pandas says False for a missing date; NaN is the truth
            values[~known] = np.nan
        new[prefix + name] = _as_column(values, complete)
    # Elapsed works at any resolution (pandas 2+ may parse to seconds or microseconds) and time zone
    naive = dates.dt.tz_convert("UTC").dt.tz_localize(None) if dt.tz is not None else dates
    elapsed = ((naive - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)).to_numpy(np.float64, na_value=np.nan)
    new[prefix + "Elapsed"] = _as_column(np.floor(elapsed), complete)
    out = df.drop(columns=[col]) if drop else df.copy(deep=False)
    out = out.drop(columns=[c for c in new if c in out.columns])  # re-running replaces, not duplicates
    out = pd.concat([out, pd.DataFrame(new, index=df.index)], axis=1)
    return out, list(new)


def _country_code(country):
    import holidays

    supported = holidays.list_supported_countries()
    code = str(country).upper()
    if code in supported:
        return code
    # a country name ('Portugal') is a common first guess: point to its code
    from holidays.registry import COUNTRIES
    names = {v[0].lower(): v[1] for v in COUNTRIES.values()}
    names.update({k.replace("_", ""): v[1] for k, v in COUNTRIES.items()})
    key = re.sub(r"[\s_]", "", str(country).lower())
    hint = f" {country!r} is a name; its code is {names[key]!r}." if key in names else \
        did_you_mean(code, [c for c in supported if len(c) == 2])
    raise CentaurError(f"unknown holiday country {country!r}; expected a two-letter code the holidays package "
                       f"knows, like 'US', 'DE' or 'PT' ({len(supported)} codes).{hint}")


def add_holidays(df, col, country, prefix=None, subdiv=None):
    """Add <prefix>Holiday (1 on a public holiday of `country`, else 0) from the holidays package.

    Works offline: the holidays package computes the dates. `subdiv` picks a region where
    holidays differ (a German state: 'BY'). Missing dates give NaN.

    >>> out, cols = add_holidays(pd.DataFrame({"Date": ["2024-07-04", "2024-07-05"]}), "Date", "US")
    >>> out["Holiday"].tolist(), cols
    ([1, 0], ['Holiday'])
    """
    import holidays

    check_column(df, col, "date column")
    code = _country_code(country)
    prefix = _default_prefix(col) if prefix is None else prefix
    dates = parse_dates(df[col], col)
    known = dates.notna().to_numpy()
    years = sorted(set(dates.dt.year.dropna().astype(int).tolist()))
    try:
        calendar = holidays.country_holidays(code, subdiv=subdiv, years=years)
    except NotImplementedError as e:  # an unknown subdivision
        raise CentaurError(f"holidays for {code!r} with subdiv={subdiv!r}: {e}. Leave subdiv out for national "
                           "holidays.") from None
    days = pd.to_datetime(pd.Series(list(calendar.keys()), dtype=object))
    # normalize drops the time of day, so 2024-07-04 13:00 is a holiday too; isin is one hash lookup per row
    flag = dates.dt.normalize().isin(days).to_numpy(np.float64)
    flag[~known] = np.nan
    name = prefix + "Holiday"
    out = df.copy(deep=False)
    out[name] = _as_column(flag, bool(known.all()))
    return out, [name]


def add_event_distance(df, date_col, event_col, group=None, prefix=None):
    """Add days since the last event and until the next one: <prefix>DaysSince, <prefix>DaysUntil.

    `event_col` is 0/1 (a promotion, a holiday); on an event day both are 0. With `group`
    (a column name or a list of them, e.g. 'Store') distances are counted within each group.
    NaN where there is no earlier (or later) event; FillMissing fills those and flags them.
    The prefix defaults to the event column's name. Vectorized: one sort and grouped ffill/bfill.

    >>> df = pd.DataFrame({"Date": ["2024-01-01", "2024-01-02", "2024-01-05"], "Promo": [0, 1, 0]})
    >>> out, cols = add_event_distance(df, "Date", "Promo")
    >>> out["PromoDaysSince"].tolist(), out["PromoDaysUntil"].tolist()
    ([nan, 0.0, 3.0], [1.0, 0.0, nan])
    """
    check_column(df, date_col, "date column")
    check_column(df, event_col, "event column")
    groups = [] if group is None else [group] if isinstance(group, str) else list(group)
    for g in groups:
        check_column(df, g, "group column")
    prefix = str(event_col) if prefix is None else prefix
    dates = parse_dates(df[date_col], date_col)
    event = df[event_col]
    if not (pd.api.types.is_numeric_dtype(event) or pd.api.types.is_bool_dtype(event)):
        examples = event.dropna().iloc[:3].tolist()
        raise CentaurError(f"event column {event_col!r} holds {event.dtype} values (e.g. {examples}); expected 0/1. "
                           f"Make one first, e.g. df[{event_col!r}] = (df[{event_col!r}] != '0').astype(int).")
    is_event = event.fillna(0).to_numpy(np.float64) != 0  # a missing flag is not an event

    work = pd.DataFrame({"_date": dates.to_numpy(), "_pos": np.arange(len(df))})
    for i, g in enumerate(groups):
        work[f"_g{i}"] = df[g].to_numpy()
    keys = [f"_g{i}" for i in range(len(groups))]
    work["_event"] = work["_date"].where(is_event)  # the date where an event happens, else NaT
    # stable sort by group then date, so ffill carries the last event forward in time
    order = work.sort_values(keys + ["_date"], kind="stable").index.to_numpy()
    work = work.iloc[order]
    if keys:
        grouped = work.groupby(keys, sort=False, dropna=False)["_event"]
        last, following = grouped.ffill(), grouped.bfill()
    else:
        last, following = work["_event"].ffill(), work["_event"].bfill()
    day = pd.Timedelta(days=1)
    since = ((work["_date"] - last) / day).to_numpy(np.float64, na_value=np.nan)
    until = ((following - work["_date"]) / day).to_numpy(np.float64, na_value=np.nan)
    # back to the caller's row order
    since_out, until_out = np.empty(len(df)), np.empty(len(df))
    since_out[order], until_out[order] = since, until
    names = [prefix + "DaysSince", prefix + "DaysUntil"]
    out = df.copy(deep=False)
    out[names[0]], out[names[1]] = since_out, until_out
    return out, names


def dayfirst_of(fmt):
    """Whether a strptime format puts the day before the month (None when it does not have both).

    >>> dayfirst_of("%d/%m/%Y"), dayfirst_of("%m/%d/%Y"), dayfirst_of("ISO 8601")
    (True, False, None)
    """
    if not fmt or "%d" not in fmt or "%m" not in fmt:
        return None
    return fmt.index("%d") < fmt.index("%m")
