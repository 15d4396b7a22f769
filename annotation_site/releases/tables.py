"""Tables written twice, as CSV for people and as Parquet for `datasets`/pandas, from the same Arrow data so the two
never disagree (but for the leading quote the CSV puts before text that starts like a formula, see FORMULA_START).
Arrow's C++ writers do the formatting, which keeps a 150,000-label ratings file well under a
second."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

CSV_OPTIONS = pa_csv.WriteOptions(quoting_style="needed")
# A text cell a spreadsheet would run as a formula (OWASP's CSV injection list): it gets a leading single quote in
# the CSV files; the Parquet files keep the text exactly. Numbers are never text here, so -1.5 stays a number.
FORMULA_START = r"^[=+@\t\r-]"


def formula_safe(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column with a single quote before every cell that starts like a formula; any other column as it is.
    The column keeps its type (a dictionary-encoded one has its dictionary rewritten)."""
    if isinstance(column, pa.ChunkedArray):
        return pa.chunked_array([formula_safe(chunk) for chunk in column.chunks], type=column.type)
    if pa.types.is_dictionary(column.type):
        return pa.DictionaryArray.from_arrays(column.indices, formula_safe(column.dictionary))
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    risky = pc.match_substring_regex(column, FORMULA_START)
    if not pc.any(risky).as_py():
        return column
    return pc.if_else(risky, pc.binary_join_element_wise(pa.scalar("'", column.type), column, ""), column)


def formula_safe_text(value: object) -> object:
    """formula_safe for one cell written by Python's csv module: text that starts like a formula gets the quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_safe(table: pa.Table) -> pa.Table:
    """The table with formula_safe applied to each of its text columns, for the CSV only."""
    return pa.table([formula_safe(table.column(name)) for name in table.column_names], names=table.column_names)


def float_column(values: np.ndarray, decimals: int) -> pa.Array:
    """Rounded floats, null where nan (Parquet and CSV readers both see a missing value, not 'nan')."""
    values = np.asarray(values, dtype=np.float64)
    return pa.array(np.round(values, decimals), mask=np.isnan(values), type=pa.float64())


def csv_view(table: pa.Table, decimals: dict[str, int]) -> pa.Table:
    """The table with its rounded float columns as fixed-decimal text ("7.00", not "7"), for the CSV only."""
    columns = []
    for name in table.column_names:
        column = table.column(name)
        places = decimals.get(name)
        if places is None:
            # Lists (e.g. text answers) have no CSV form of their own: write them as JSON arrays.
            if pa.types.is_list(column.type):
                column = pa.array([None if v is None else _json_list(v) for v in column.to_pylist()], type=pa.string())
            columns.append(formula_safe(column))
            continue
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        missing = np.isnan(values)
        columns.append(fixed_decimals(np.where(missing, 0.0, values), places, missing))
    return pa.table(columns, names=table.column_names)


def fixed_decimals(values: np.ndarray, places: int, missing: np.ndarray) -> pa.Array:
    """`"%.{places}f" % value` for each value, null where missing, as Arrow text.

    Values already rounded to `places` decimals (as float_column leaves them) are written from their integer
    count of 10**-places with Arrow's string functions, which is the same text, since such a double is far closer
    to that count than half a unit in the last place; any other value (and any too large for the integer form)
    goes through printf, value by value."""
    scale = 10.0**places
    count = np.rint(np.abs(values) * scale)
    with np.errstate(invalid="ignore"):
        clean = (np.round(values, places) == values) & (count < 2.0**52)
    whole = np.where(clean, count, 0.0).astype(np.int64)
    text = pc.cast(pa.array(whole // int(scale)), pa.string())
    if places:
        fraction = pc.utf8_slice_codeunits(pc.cast(pa.array(whole % int(scale) + int(scale)), pa.string()), 1)
        text = pc.binary_join_element_wise(text, fraction, ".")
    text = pc.binary_join_element_wise(pc.if_else(pa.array(np.signbit(values)), "-", ""), text, "")
    if not clean.all():
        texts = text.to_pylist()
        for i, printed in zip(np.flatnonzero(~clean).tolist(), np.char.mod(f"%.{places}f", values[~clean]).tolist()):
            texts[i] = printed
        text = pa.array(texts, pa.string())
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text)


def _json_list(items: list) -> str:
    import json

    return json.dumps(items, ensure_ascii=False)


def write_csv(table: pa.Table, path: Path, *, decimals: dict[str, int] | None = None) -> None:
    pa_csv.write_csv(csv_view(table, decimals or {}), path, write_options=CSV_OPTIONS)


def write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


class StreamingTable:
    """A table written chunk by chunk to a CSV and a Parquet file, so that only a few chunks are ever in memory.

    The writing itself happens on a thread of its own: Arrow's writers release the GIL, so the formatting and
    compression of one chunk overlap with the caller's reading of the next. At most two chunks wait for it."""

    def __init__(self, schema: pa.Schema, csv_path: Path, parquet_path: Path) -> None:
        self.schema = schema
        self._csv = pa_csv.CSVWriter(str(csv_path), schema, write_options=CSV_OPTIONS)
        self._parquet = pq.ParquetWriter(str(parquet_path), schema, compression="zstd")
        self.rows = 0
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="release-table-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._csv.write_table(csv_safe(table))
                    self._parquet.write_table(table)
                except BaseException as exc:  # handed to the caller on its next write or close
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, columns: dict[str, object]) -> None:
        """One chunk: per column a list of Python values or an Arrow array of the schema's type."""

        def arrow(name: str) -> pa.Array:
            column, kind = columns[name], self.schema.field(name).type
            if isinstance(column, pa.Array):
                return column if column.type == kind else column.cast(kind)
            return pa.array(column, type=kind)

        self._raise()
        table = pa.table({name: arrow(name) for name in self.schema.names}, schema=self.schema)
        if table.num_rows == 0:
            return
        self._queue.put(table)
        self.rows += table.num_rows

    def close(self) -> None:
        """Finish both files; raises what the writing thread met, if anything."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._csv.close()
        self._parquet.close()
        self._raise()

    def abandon(self) -> None:
        """Stop the writing thread and close the files after a failure elsewhere (the files are thrown away)."""
        try:
            self.close()
        except Exception:  # the failure being handled is the one to report
            pass
