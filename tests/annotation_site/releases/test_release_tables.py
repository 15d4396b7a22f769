"""CSV cells of the release's tables: fixed decimals, written as printf writes them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from annotation_site.releases.tables import csv_view, float_column


def test_csv_numbers_have_fixed_decimals_exactly_as_printf_writes_them() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            [0.0, -0.0, -0.001, 0.005, 0.015, 2.675, 9.995, -9.995, 1.5, -2.5, 123456.789, 1e18, -3e17, np.nan],
            rng.normal(0.0, 50.0, 2000),
        ]
    )
    for places in (0, 1, 2, 4):
        table = pa.table({"x": float_column(values, places)})
        written = csv_view(table, {"x": places}).column("x").to_pylist()
        rounded = np.round(values, places)
        expected = [None if np.isnan(v) else f"%.{places}f" % v for v in rounded]
        assert written == expected
