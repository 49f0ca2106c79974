"""Results: reaction coordinate, provenance, atomic NetCDF writing."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayesflux import fva, read_results, write_netcdf


def test_netcdf_round_trip_keeps_coords_and_attrs(tmp_path, small):
    result = fva(small, fraction=0.5)
    path = write_netcdf(result, tmp_path / "out" / "fva.nc")
    back = read_results(path)
    ds = back.to_dataset()
    assert list(ds.reaction.values) == list(small.reactions)
    np.testing.assert_array_equal(ds["maximum"].values, result["maximum"].values)
    assert ds.attrs["method"] == "fva" and ds.attrs["fraction"] == 0.5
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left behind


def test_interrupted_write_keeps_the_previous_file(tmp_path, small, monkeypatch):
    path = write_netcdf(fva(small), tmp_path / "r.nc")
    before = path.read_bytes()

    def explode(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", explode)
    with pytest.raises(KeyboardInterrupt):
        write_netcdf(fva(small, fraction=0.1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]
